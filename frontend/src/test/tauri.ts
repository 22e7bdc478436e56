// Test double of `@tauri-apps/api/core` for Vitest (vi.mock): `invoke` answers
// from per-command handlers and records every call; `Channel` is a plain
// object whose `onmessage` the test calls to play the daemon's stream.
import { vi } from "vitest";

export type Handler = (args: Record<string, unknown>) => unknown;

export const handlers = new Map<string, Handler>();
export const calls: { cmd: string; args: Record<string, unknown> }[] = [];

export const invoke = vi.fn(async (cmd: string, args?: Record<string, unknown>) => {
  calls.push({ cmd, args: args ?? {} });
  const h = handlers.get(cmd);
  if (!h) throw { code: "internal", message: `test: no handler for ${cmd}` };
  return await h(args ?? {});
});

export class Channel<T> {
  onmessage: (message: T) => void = () => {};
}

export function resetTauri(): void {
  handlers.clear();
  calls.length = 0;
  invoke.mockClear();
}

export function callsOf(cmd: string): Record<string, unknown>[] {
  return calls.filter((c) => c.cmd === cmd).map((c) => c.args);
}
