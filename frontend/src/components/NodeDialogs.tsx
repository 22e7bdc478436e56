//! Adding a node (probe → compare fingerprint → pin → log in), logging in, removing.

import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";

import { api } from "../api";
import type { NodeEntry } from "../bindings/NodeEntry";
import type { ProbeResult } from "../bindings/ProbeResult";
import { type AppError, toAppError } from "../errors";
import { fingerprintsMatch, normalizeFingerprint } from "../format";
import { dialog, findNode, forgetNode, openNode, refreshNode, upsertNode } from "../store";
import { ConfirmDialog, Dialog, ErrorBanner, FingerprintView } from "./common";

type AddStep = { step: "address" } | { step: "confirm"; probe: ProbeResult } | { step: "login"; node: NodeEntry };

export function AddNodeDialog({ onClose }: { onClose: () => void }) {
  const [state, setState] = useState<AddStep>({ step: "address" });
  const [address, setAddress] = useState("");
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AppError | null>(null);
  const [typed, setTyped] = useState("");

  const run = async (work: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await work();
    } catch (e) {
      setError(toAppError(e));
    } finally {
      setBusy(false);
    }
  };

  const probe = () =>
    run(async () => {
      const p = await api.nodeProbe(address.trim());
      setTyped("");
      setState({ step: "confirm", probe: p });
    });

  const confirm = (probe: ProbeResult) =>
    run(async () => {
      const entry = await api.nodeAdd(probe.address, probe.fingerprint, name.trim() === "" ? null : name.trim());
      upsertNode(entry);
      setState({ step: "login", node: entry });
    });

  // Each step starts with the focus on what to read or fill in (the dialog
  // stays open across steps, so `autofocus` alone would not move it).
  useEffect(() => {
    document.querySelector<HTMLElement>('[data-testid="add-node-dialog"] [data-focus-first]')?.focus();
  }, [state.step]);

  const finish = (node: NodeEntry) => {
    onClose();
    openNode(node.id);
    void refreshNode(node.id);
  };

  return (
    <Dialog title="Add a node" onClose={onClose} testId="add-node-dialog" dismissable={!busy}>
      <ol class="stepper" aria-label="Steps">
        <li class={state.step === "address" ? "current" : "done"}>Address</li>
        <li class={state.step === "confirm" ? "current" : state.step === "login" ? "done" : ""}>Fingerprint</li>
        <li class={state.step === "login" ? "current" : ""}>Log in</li>
      </ol>
      {error && <ErrorBanner error={error} />}
      {state.step === "address" && (
        <form
          class="form"
          onSubmit={(e) => {
            e.preventDefault();
            if (address.trim() !== "" && !busy) void probe();
          }}
        >
          <label class="field">
            <span>Address</span>
            <input
              class="input"
              autoFocus
              required
              placeholder="node.local or 192.168.1.20:7443"
              autoComplete="off"
              spellcheck={false}
              data-testid="node-address-input"
              data-focus-first
              value={address}
              onInput={(e) => setAddress(e.currentTarget.value)}
            />
            <small>The port is 7443 unless the node was set up otherwise.</small>
          </label>
          <label class="field">
            <span>Name (optional)</span>
            <input
              class="input"
              placeholder="Living-room node"
              data-testid="node-name-input"
              value={name}
              onInput={(e) => setName(e.currentTarget.value)}
            />
          </label>
          <div class="form-actions">
            <button type="button" class="button button-quiet" onClick={onClose} disabled={busy}>
              Cancel
            </button>
            <button
              type="submit"
              class="button button-primary"
              data-testid="probe-button"
              disabled={busy || address.trim() === ""}
            >
              {busy ? "Connecting…" : "Connect"}
            </button>
          </div>
        </form>
      )}
      {state.step === "confirm" && (
        <div class="form">
          <p>
            <strong>{state.probe.address}</strong> presented this certificate fingerprint. On the node, run{" "}
            <code>archipelagod pairing</code> (or look at its console) and check that every character matches.
          </p>
          <FingerprintView fingerprint={state.probe.fingerprint} testId="fingerprint-text" focusFirst />
          <label class="field">
            <span>Or paste the fingerprint the node shows, to compare it for you</span>
            <input
              class="input mono"
              spellcheck={false}
              autoComplete="off"
              data-testid="fingerprint-compare-input"
              value={typed}
              onInput={(e) => setTyped(e.currentTarget.value)}
            />
            {typed.trim() !== "" && <CompareResult typed={typed} actual={state.probe.fingerprint} />}
          </label>
          <p class="hint">
            If they differ, do not add this node: something between you and the node may be impersonating it.
          </p>
          <div class="form-actions">
            <button
              type="button"
              class="button button-quiet"
              disabled={busy}
              onClick={() => {
                setError(null);
                setState({ step: "address" });
              }}
            >
              Back
            </button>
            <button
              type="button"
              class="button button-primary"
              data-testid="confirm-fingerprint-button"
              disabled={busy || (typed.trim() !== "" && !fingerprintsMatch(typed, state.probe.fingerprint))}
              onClick={() => void confirm(state.probe)}
            >
              {busy ? "Adding…" : "It matches — add this node"}
            </button>
          </div>
        </div>
      )}
      {state.step === "login" && (
        <LoginForm
          node={state.node}
          onDone={finish}
          secondary={
            <button
              type="button"
              class="button button-quiet"
              data-testid="skip-login-button"
              onClick={() => finish(state.node)}
            >
              Later
            </button>
          }
        />
      )}
    </Dialog>
  );
}

function CompareResult({ typed, actual }: { typed: string; actual: string }) {
  if (normalizeFingerprint(typed) === null) {
    return <small class="text-muted">Not a complete fingerprint yet (64 hex digits).</small>;
  }
  return fingerprintsMatch(typed, actual) ? (
    <small class="text-ok" data-testid="fingerprint-compare-result" data-match="true">
      ✓ Matches
    </small>
  ) : (
    <strong class="text-danger" data-testid="fingerprint-compare-result" data-match="false">
      ✕ Does not match — do not add this node
    </strong>
  );
}

interface LoginFormProps {
  node: NodeEntry;
  onDone: (node: NodeEntry) => void;
  secondary?: ComponentChildren;
}

/** The password form: the password lives only in this component's state until sent. */
function LoginForm({ node, onDone, secondary }: LoginFormProps) {
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AppError | null>(null);
  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      const entry = await api.nodeLogin(node.id, password);
      setPassword("");
      upsertNode(entry);
      onDone(entry);
    } catch (e) {
      setError(toAppError(e));
      setPassword("");
    } finally {
      setBusy(false);
    }
  };
  return (
    <form
      class="form"
      onSubmit={(e) => {
        e.preventDefault();
        if (password !== "" && !busy) void submit();
      }}
    >
      {error && <ErrorBanner error={error} />}
      <p>
        Log in to <strong>{node.name}</strong> ({node.address}) with the node's password. The password is sent to the
        node once and never stored; the app keeps only the session.
      </p>
      <label class="field">
        <span>Password</span>
        <input
          class="input"
          type="password"
          autoFocus
          autoComplete="current-password"
          data-testid="password-input"
          data-focus-first
          value={password}
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
      </label>
      <div class="form-actions">
        {secondary}
        <button
          type="submit"
          class="button button-primary"
          data-testid="login-button"
          disabled={busy || password === ""}
        >
          {busy ? "Logging in…" : "Log in"}
        </button>
      </div>
    </form>
  );
}

export function LoginDialog({ nodeId, onClose }: { nodeId: string; onClose: () => void }) {
  const state = findNode(nodeId);
  if (!state) return null;
  return (
    <Dialog title={`Log in to ${state.node.name}`} onClose={onClose} testId="login-dialog">
      <LoginForm
        node={state.node}
        onDone={(entry) => {
          onClose();
          void refreshNode(entry.id);
        }}
        secondary={
          <button type="button" class="button button-quiet" onClick={onClose}>
            Cancel
          </button>
        }
      />
    </Dialog>
  );
}

export function RemoveNodeDialog({ nodeId, onClose }: { nodeId: string; onClose: () => void }) {
  const state = findNode(nodeId);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<AppError | null>(null);
  if (!state) return null;
  const remove = async () => {
    setBusy(true);
    setError(null);
    try {
      await api.nodeRemove(nodeId);
      forgetNode(nodeId);
      onClose();
    } catch (e) {
      setError(toAppError(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <ConfirmDialog
      title={`Remove ${state.node.name}?`}
      testId="remove-node-dialog"
      onClose={onClose}
      onConfirm={() => void remove()}
      confirmLabel="Remove node"
      busyLabel="Removing…"
      confirmTestId="confirm-remove-node-button"
      busy={busy}
      error={error}
      danger
    >
      <p>
        This app forgets <strong>{state.node.address}</strong>, its pinned fingerprint and your session on it. The node
        itself and its apps keep running; you can add it again later.
      </p>
    </ConfirmDialog>
  );
}

/** Whichever node dialog is open. */
export function NodeDialogs() {
  const d = dialog.value;
  const close = () => (dialog.value = null);
  if (d === null) return null;
  switch (d.kind) {
    case "add":
      return <AddNodeDialog onClose={close} />;
    case "login":
      return <LoginDialog nodeId={d.nodeId} onClose={close} />;
    case "remove":
      return <RemoveNodeDialog nodeId={d.nodeId} onClose={close} />;
  }
}
