import { ConvoyClient } from '@avvos/convoy/client';
import { ConvoyProvider } from '@avvos/convoy/react';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import './styles.css';

// In development `convoy dev` serves on its port of the host this page came from; a page built
// for production names its server in VITE_CONVOY_URL.
const convoyUrl = import.meta.env.VITE_CONVOY_URL || `${location.protocol}//${location.hostname}:${__CONVOY_PORT__}`;

// One client for the page: every query shares its one live stream.
const client = new ConvoyClient(convoyUrl);

createRoot(document.getElementById('root') as HTMLElement).render(
  <StrictMode>
    <ConvoyProvider client={client}>
      <App />
    </ConvoyProvider>
  </StrictMode>,
);
