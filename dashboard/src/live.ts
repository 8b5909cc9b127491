/**
 * Live data from the dashboard's server-sent event streams, read with `fetch` (an `EventSource`
 * cannot send the admin key). A stream that ends is opened again after a pause; every
 * (re)connection starts with the current value, as Convoy's own sync stream does.
 */
import { useEffect, useState } from 'react';
import { apiUrl, authHeaders, type ErrorShape, unauthorized } from './api.js';

export type LiveState = 'connecting' | 'live' | 'reconnecting';

export function subscribeEvents(
  path: string,
  onEvent: (name: string, data: unknown) => void,
  onState: (state: LiveState) => void,
): () => void {
  const abort = new AbortController();
  let retry: ReturnType<typeof setTimeout> | undefined;
  const open = async () => {
    try {
      const response = await fetch(apiUrl(path), { headers: authHeaders(), signal: abort.signal });
      if (response.status === 401) {
        unauthorized();
        return;
      }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      onState('live');
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += value;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const text = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let name = 'message';
          let data = '';
          for (const line of text.split('\n')) {
            if (line.startsWith('event:')) name = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trimStart();
          }
          if (data) onEvent(name, JSON.parse(data));
        }
      }
    } catch {
      if (abort.signal.aborted) return;
    }
    if (abort.signal.aborted) return;
    onState('reconnecting');
    retry = setTimeout(() => void open(), 1_000);
  };
  onState('connecting');
  void open();
  return () => {
    abort.abort();
    clearTimeout(retry);
  };
}

export interface LiveValue<T> {
  value: T | undefined;
  error: ErrorShape | undefined;
  state: LiveState;
}

/** The current value of a live stream (`value` and `error` events); `path` null: none. */
export function useLiveValue<T>(path: string | null): LiveValue<T> {
  const [live, setLive] = useState<LiveValue<T>>({ value: undefined, error: undefined, state: 'connecting' });
  useEffect(() => {
    setLive({ value: undefined, error: undefined, state: 'connecting' });
    if (path === null) return;
    return subscribeEvents(
      path,
      (name, data) => {
        if (name === 'value') setLive({ value: data as T, error: undefined, state: 'live' });
        else if (name === 'error') setLive((last) => ({ ...last, error: data as ErrorShape }));
      },
      (state) => setLive((last) => ({ ...last, state })),
    );
  }, [path]);
  return live;
}
