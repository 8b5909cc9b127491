/**
 * A TCP proxy in front of Postgres that, once armed, lets the next `COMMIT` through to the server
 * and then cuts the client off before any answer comes back: the shape of a connection lost
 * right after a commit, whose outcome the client cannot know. Plain text only (`sslmode=disable`),
 * so that it can see the statements.
 */
import net from 'node:net';

export interface CommitDroppingProxy {
  /** A database URL through the proxy, for `url`'s database. */
  url(url: string): string;
  /** Drop the connection that sends the next COMMIT. */
  arm(): void;
  /** How many connections it has dropped. */
  dropped(): number;
  close(): Promise<void>;
}

const COMMIT = Buffer.from('COMMIT\0');

export async function startCommitDroppingProxy(
  target = { host: '127.0.0.1', port: 5432 },
): Promise<CommitDroppingProxy> {
  let armed = false;
  let dropped = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    sockets.add(client).add(upstream);
    const forget = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', forget);
    upstream.on('error', forget);
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('data', (chunk) => client.write(chunk));
    upstream.on('end', () => client.end());
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      if (armed && chunk.includes(COMMIT)) {
        armed = false;
        dropped++;
        // The server has the COMMIT; the client never hears how it went.
        client.destroy();
        setTimeout(() => upstream.destroy(), 300);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url(url: string) {
      const through = new URL(url);
      through.hostname = '127.0.0.1';
      through.port = String(port);
      through.searchParams.set('sslmode', 'disable');
      return through.toString();
    },
    arm() {
      armed = true;
    },
    dropped: () => dropped,
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
