/**
 * Server-sent events as the sync stream frames them (docs/protocol.md § Sync): events end with a
 * blank line, `event:` names one, `data:` lines carry its JSON. Only what Convoy's server sends
 * is understood: `\n` line ends, no `id:` or `retry:`.
 */

export interface ServerSentEvent {
  /** `message` when the event names none. */
  name: string;
  data: string;
}

/** The events of a stream's body, in order, as they arrive; heartbeats (no data) left out. */
export async function* readEvents(body: NonNullable<Response['body']>): AsyncGenerator<ServerSentEvent> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += value;
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const event = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (event) yield event;
      end = buffer.indexOf('\n\n');
    }
  }
}

/** One event's text (without the blank line that ends it); `null` for a heartbeat. */
export function parseEvent(text: string): ServerSentEvent | null {
  let name = 'message';
  let data = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('event:')) name = line.slice(6).trim();
    else if (line.startsWith('data:')) data += line.slice(5).trimStart();
  }
  return data ? { name, data } : null;
}
