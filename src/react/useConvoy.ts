/** `useConvoy`: the `ConvoyClient` of the nearest `ConvoyProvider`. */
import * as React from 'react';
import type { ConvoyClient } from '../client/client.js';
import { ClientContext } from './provider.js';

export function useConvoy(): ConvoyClient {
  const client = React.useContext(ClientContext);
  if (!client) throw new Error('useConvoy: wrap your app in <ConvoyProvider client={…}>');
  return client;
}
