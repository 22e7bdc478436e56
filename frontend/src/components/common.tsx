//! Small shared pieces: modal dialog, confirm dialog, error banner, fingerprint views, bars.

import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";

import { type AppError, describeError } from "../errors";
import { fingerprintRows } from "../format";

interface DialogProps {
  title: string;
  onClose: () => void;
  children: ComponentChildren;
  testId?: string;
  wide?: boolean;
  /** Whether Escape may close it (not while an operation runs). */
  dismissable?: boolean;
}

/**
 * A modal on the native <dialog>: focus moves into it, the page behind is
 * inert, Escape closes it when allowed.
 */
export function Dialog({ title, onClose, children, testId, wide, dismissable = true }: DialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (typeof d.showModal === "function" && !d.open) d.showModal();
    else d.setAttribute("open", "");
    // Start on the field or button marked for it, wherever the browser put the focus.
    if (!d.contains(document.activeElement)) d.querySelector<HTMLElement>("[autofocus]")?.focus();
    return () => {
      if (d.open && typeof d.close === "function") d.close();
    };
  }, []);
  return (
    <dialog
      ref={ref}
      class={wide ? "dialog dialog-wide" : "dialog"}
      aria-label={title}
      data-testid={testId}
      onCancel={(e) => {
        e.preventDefault();
        if (dismissable) onClose();
      }}
    >
      <header class="dialog-header">
        <h2>{title}</h2>
        <button
          type="button"
          class="icon-button"
          aria-label="Close"
          data-testid="dialog-close-button"
          disabled={!dismissable}
          onClick={onClose}
        >
          ×
        </button>
      </header>
      <div class="dialog-body">{children}</div>
    </dialog>
  );
}

interface ConfirmDialogProps {
  title: string;
  testId: string;
  onClose: () => void;
  onConfirm: () => void;
  /** The confirm button's words ("Remove node"), and while busy ("Removing…"). */
  confirmLabel: string;
  busyLabel?: string;
  confirmTestId: string;
  /** While the action runs: buttons disabled, Escape ignored. */
  busy: boolean;
  /** The confirm button is red: the action deletes something. */
  danger?: boolean;
  /** The form is not filled in right yet. */
  confirmDisabled?: boolean;
  error?: AppError | null;
  /** Start on Cancel (the safe choice) rather than on a field of the form. */
  focusCancel?: boolean;
  wide?: boolean;
  /** What to ask or fill in, and the progress while it runs. */
  children: ComponentChildren;
  /** Shown instead of the question once the action is done (with its own Close). */
  done?: ComponentChildren;
}

/**
 * A question in a modal with Cancel and a confirm button: the one shape of
 * every "are you sure" and "enter the passphrase" dialog. It is a form, so
 * Enter in a field confirms (never while busy or not filled in right).
 */
export function ConfirmDialog(props: ConfirmDialogProps) {
  const { busy, confirmDisabled, onConfirm, focusCancel = true } = props;
  const isDone = props.done !== undefined && props.done !== null && props.done !== false;
  // The form (and the button that had the focus) is gone: focus the result's own button.
  const doneRef = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (isDone) doneRef.current?.querySelector<HTMLElement>("[autofocus]")?.focus();
  }, [isDone]);
  return (
    <Dialog title={props.title} onClose={props.onClose} testId={props.testId} dismissable={!busy} wide={props.wide}>
      {props.error && <ErrorBanner error={props.error} />}
      {isDone ? (
        <div ref={doneRef}>{props.done}</div>
      ) : (
        <form
          class="form"
          onSubmit={(e) => {
            e.preventDefault();
            if (!busy && !confirmDisabled) onConfirm();
          }}
        >
          {props.children}
          <div class="form-actions">
            <button
              type="button"
              class="button button-quiet"
              autoFocus={focusCancel}
              onClick={props.onClose}
              disabled={busy}
            >
              Cancel
            </button>
            <button
              type="submit"
              class={props.danger ? "button button-danger" : "button button-primary"}
              data-testid={props.confirmTestId}
              disabled={busy || confirmDisabled}
            >
              {busy ? (props.busyLabel ?? props.confirmLabel) : props.confirmLabel}
            </button>
          </div>
        </form>
      )}
    </Dialog>
  );
}

/** A password field for a passphrase: never autocompleted, never spell-checked. */
export function PassphraseInput({
  label,
  value,
  onInput,
  testId,
  autoFocus,
  disabled,
  describedBy,
}: {
  label: string;
  value: string;
  onInput: (v: string) => void;
  testId: string;
  autoFocus?: boolean;
  disabled?: boolean;
  describedBy?: string;
}) {
  return (
    <label class="field">
      <span>{label}</span>
      <input
        class="input"
        type="password"
        autoComplete="new-password"
        spellcheck={false}
        autoFocus={autoFocus}
        disabled={disabled}
        aria-describedby={describedBy}
        data-testid={testId}
        value={value}
        onInput={(e) => onInput(e.currentTarget.value)}
      />
    </label>
  );
}

interface BannerProps {
  error: AppError;
  onRetry?: (() => void) | undefined;
  onLogin?: (() => void) | undefined;
  onDismiss?: (() => void) | undefined;
  /** Where this error came from ("Installing Hello Web"), shown before the title. */
  context?: string;
}

/** An error a person can act on: what happened, the node's words, what to do, a button. */
export function ErrorBanner({ error, onRetry, onLogin, onDismiss, context }: BannerProps) {
  if (error.code === "fingerprint_mismatch") return <FingerprintMismatch message={error.message} />;
  const d = describeError(error);
  return (
    <div class="banner banner-error" role="alert" data-testid="error-banner" data-code={error.code}>
      <div class="banner-body">
        <strong class="banner-title">
          {context ? `${context}: ` : ""}
          {d.title}
        </strong>
        {error.message !== "" && <pre class="banner-message">{error.message}</pre>}
        <p class="banner-advice">{d.advice}</p>
      </div>
      <div class="banner-actions">
        {d.action === "login" && onLogin && (
          <button type="button" class="button button-primary" onClick={onLogin}>
            Log in
          </button>
        )}
        {d.action !== "login" && onRetry && (
          <button type="button" class="button" onClick={onRetry}>
            Try again
          </button>
        )}
        {onDismiss && (
          <button type="button" class="button button-quiet" onClick={onDismiss}>
            Dismiss
          </button>
        )}
      </div>
    </div>
  );
}

/** The loud warning for a node whose certificate no longer matches the pinned one. */
export function FingerprintMismatch({
  message,
  compact,
  onRemove,
  onDetails,
}: {
  message?: string;
  compact?: boolean;
  onRemove?: () => void;
  onDetails?: () => void;
}) {
  return (
    <div
      class={compact ? "mismatch mismatch-compact" : "mismatch"}
      role="alert"
      data-testid="fingerprint-mismatch-warning"
    >
      <strong class="mismatch-title">⚠ Refused: this node's identity has changed</strong>
      {!compact && (
        <>
          <p>
            The node presented a certificate whose fingerprint differs from the one you confirmed when you added it. The
            app will not talk to it and will not send your password.
          </p>
          {message && <pre class="banner-message">{message}</pre>}
          <ol>
            <li>Do not log in until you know why.</li>
            <li>
              On the node, run <code>archipelagod pairing</code> and look at the fingerprint it shows.
            </li>
            <li>
              If you reinstalled the node or replaced its certificate, remove it here and add it again, comparing the
              new fingerprint. Otherwise someone may be intercepting the connection: check your network.
            </li>
          </ol>
        </>
      )}
      {(onRemove || onDetails) && (
        <div class="mismatch-actions">
          {onDetails && (
            <button type="button" class="button button-small" onClick={onDetails}>
              What to do
            </button>
          )}
          {onRemove && (
            <button type="button" class="button button-danger" data-testid="mismatch-remove-button" onClick={onRemove}>
              Remove this node
            </button>
          )}
        </div>
      )}
    </div>
  );
}

/** A fingerprint in rows of 8 pairs, monospace, for comparing by eye. */
export function FingerprintView({
  fingerprint,
  testId,
  focusFirst,
}: {
  fingerprint: string;
  testId?: string;
  focusFirst?: boolean;
}) {
  return (
    <div
      class="fingerprint"
      tabIndex={0}
      data-focus-first={focusFirst ? "" : undefined}
      data-testid={testId}
      data-fingerprint={fingerprint}
      aria-label={`Fingerprint ${fingerprint}`}
    >
      {fingerprintRows(fingerprint).map((row) => (
        <div class="fingerprint-row" key={row}>
          {row}
        </div>
      ))}
    </div>
  );
}

/** A thin horizontal bar with its value written next to it. */
export function Bar({
  label,
  fraction,
  text,
  warn = 0.85,
}: {
  label: string;
  fraction: number;
  text: string;
  warn?: number;
}) {
  const pct = Math.round(Math.min(1, Math.max(0, fraction)) * 100);
  const level = fraction >= 0.95 ? "bar-danger" : fraction >= warn ? "bar-warn" : "";
  return (
    <div class="metric">
      <div class="metric-head">
        <span class="metric-label">{label}</span>
        <span class="metric-text">{text}</span>
      </div>
      <div class={`bar ${level}`} role="img" aria-label={`${label}: ${text}`}>
        <div class="bar-fill" style={{ width: `${pct}%` }} />
      </div>
    </div>
  );
}

/** A placeholder while something loads: words, not a spinner. */
export function Loading({ text }: { text: string }) {
  return (
    <p class="loading" role="status" aria-live="polite" data-testid="loading">
      {text}
    </p>
  );
}
