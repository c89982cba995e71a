/**
 * Counts the gateway's upstream sockets as undici reports them (its diagnostics channel
 * `undici:client:connected`), per backend port: node:http Agents are no longer what holds
 * them, so counting those would pass without testing anything. Node's built-in fetch and
 * WebSocket publish on the same channel; the port filter keeps only the backend's.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';

export interface UpstreamSockets {
  /** Sockets to the port that are open now. */
  open(): number;
  /** Connections ever made to the port. */
  opened(): number;
  stop(): void;
}

export function watchUpstreamSockets(port: number | string): UpstreamSockets {
  const open = new Set<Socket>();
  let opened = 0;
  const onConnected = (message: unknown) => {
    const { socket, connectParams } = message as { socket: Socket; connectParams: { port: string | number } };
    if (Number(connectParams.port) !== Number(port)) return;
    opened++;
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  };
  subscribe('undici:client:connected', onConnected);
  return { open: () => open.size, opened: () => opened, stop: () => unsubscribe('undici:client:connected', onConnected) };
}
