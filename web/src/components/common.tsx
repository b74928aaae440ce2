import { useEffect, useState } from 'react';
import { ApiError } from '../api';
import { timeLeft } from '../util';

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const msg =
    error instanceof ApiError
      ? `${error.problem.detail} (${error.problem.code})`
      : error instanceof Error
        ? error.message
        : String(error);
  return (
    <div role="alert" className="error">
      {msg}
    </div>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span className={'badge status-' + status}>{status.replace(/_/g, ' ')}</span>;
}

/** Re-renders every second: TTL countdowns, approval deadlines. */
export function useNow(intervalMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(t);
  }, [intervalMs]);
  return now;
}

export function Countdown({ at }: { at?: string | null }) {
  const now = useNow();
  if (!at) return <span>—</span>;
  return (
    <time dateTime={at} title={new Date(at).toLocaleString()}>
      {timeLeft(at, now)}
    </time>
  );
}

export function Loading() {
  return (
    <p role="status" aria-live="polite">
      Loading…
    </p>
  );
}

export function Json({ value }: { value: unknown }) {
  return <pre className="json">{JSON.stringify(value, null, 2)}</pre>;
}

/** Load once (and again when deps change); errors kept for <ErrorBox>. */
export function useLoad<T>(fn: (signal: AbortSignal) => Promise<T>, deps: unknown[]): {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
  setData: (d: T) => void;
} {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(true);
  const [n, setN] = useState(0);
  useEffect(() => {
    const ac = new AbortController();
    setLoading(true);
    fn(ac.signal)
      .then((d) => {
        if (!ac.signal.aborted) {
          setData(d);
          setError(null);
        }
      })
      .catch((e) => {
        if (!ac.signal.aborted) setError(e);
      })
      .finally(() => {
        if (!ac.signal.aborted) setLoading(false);
      });
    return () => ac.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, n]);
  return { data, error, loading, reload: () => setN((x) => x + 1), setData };
}
