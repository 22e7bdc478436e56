// Small helpers for rendering Preact components into happy-dom.
import type { VNode } from "preact";
import { render } from "preact";
import { act } from "preact/test-utils";

let root: HTMLElement | null = null;

export async function mount(vnode: VNode): Promise<HTMLElement> {
  unmount();
  root = document.createElement("div");
  document.body.append(root);
  await act(() => {
    render(vnode, root!);
  });
  return root;
}

export function unmount(): void {
  if (root) {
    render(null, root);
    root.remove();
    root = null;
  }
}

/** Lets pending promises and effects run. */
export async function settle(rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await act(async () => {
      await new Promise((r) => setTimeout(r, 0));
    });
  }
}

export async function waitFor<T>(find: () => T | null | undefined | false, what = "condition"): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const v = find();
    if (v) return v;
    await settle(1);
  }
  throw new Error(`timed out waiting for ${what}\n${document.body.innerHTML.slice(0, 3000)}`);
}

export const q = (testId: string): HTMLElement | null => document.querySelector(`[data-testid="${testId}"]`);

export async function byTestId(testId: string): Promise<HTMLElement> {
  return waitFor(() => q(testId), `[data-testid="${testId}"]`);
}

export async function click(el: HTMLElement): Promise<void> {
  await act(() => {
    el.click();
  });
  await settle();
}

export async function type(el: HTMLElement, value: string): Promise<void> {
  await act(() => {
    (el as HTMLInputElement).value = value;
    el.dispatchEvent(new Event("input", { bubbles: true }));
  });
}
