import type { ConnectionState } from '@avvos/convoy/client';
import { useConvoy } from '@avvos/convoy/react';
import { useCallback, useSyncExternalStore } from 'react';

const labels: Record<ConnectionState, string> = {
  connecting: 'Connecting…',
  open: 'Live',
  reconnecting: 'Reconnecting…',
  closed: 'Offline',
};

/** The state of the client's live stream: while it is down, lists show the last data seen. */
export function ConnectionBadge() {
  const client = useConvoy();
  const subscribe = useCallback((onChange: () => void) => client.onConnectionStateChange(onChange), [client]);
  const state = useSyncExternalStore(subscribe, () => client.connectionState);
  return (
    <output className={`badge badge-${state}`} data-testid="connection" data-state={state} aria-live="polite">
      <span className="badge-dot" aria-hidden="true" />
      {labels[state]}
    </output>
  );
}
