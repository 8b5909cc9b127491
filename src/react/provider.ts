/** `ConvoyProvider`: hands a `ConvoyClient` to every hook below it. */
import * as React from 'react';
import type { ConvoyClient } from '../client/client.js';

export const ClientContext: React.Context<ConvoyClient | null> = React.createContext<ConvoyClient | null>(null);

export function ConvoyProvider(props: { client: ConvoyClient; children?: React.ReactNode }): React.ReactElement {
  return React.createElement(ClientContext.Provider, { value: props.client }, props.children);
}
