import { useEffect, useState, type FormEvent } from 'react';
import { useNavigate, useSearchParams } from 'react-router';
import { get, post, setCsrfToken, type Provider, type Session } from '../api';
import { useSession } from '../session';
import { ErrorBox } from '../components/common';

function safeNext(next: string | null): string {
  // Same-origin console paths only (never //host or a scheme).
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/login')) return '/catalog';
  return next;
}

export default function LoginPage() {
  const { refresh } = useSession();
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const [token, setToken] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [providers, setProviders] = useState<Provider[]>([]);
  const next = safeNext(params.get('next'));

  useEffect(() => {
    get<Provider[] | { items: Provider[] }>('/v1/auth/providers')
      .then((p) => setProviders(Array.isArray(p) ? p : (p.items ?? [])))
      .catch(() => setProviders([]));
  }, []);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const s = await post<Session>('/v1/session', { token: token.trim() });
      setCsrfToken(s.csrf_token);
      setToken('');
      await refresh();
      navigate(next, { replace: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const returnTo = '/ui' + next;
  return (
    <main id="main" className="login">
      <h1>Sign in to Gangway</h1>
      {providers.length > 0 && (
        <section aria-labelledby="sso">
          <h2 id="sso">With your company account</h2>
          <ul className="providers">
            {providers.map((p) => (
              <li key={p.id}>
                <a className="button" href={p.login_url + (p.login_url.includes('?') ? '&' : '?') + 'return_to=' + encodeURIComponent(returnTo)}>
                  Sign in with {p.name}
                </a>
              </li>
            ))}
          </ul>
        </section>
      )}
      <section aria-labelledby="tok">
        <h2 id="tok">With an API token</h2>
        <form onSubmit={submit}>
          <label htmlFor="token">API token</label>
          <input
            id="token"
            name="token"
            type="password"
            autoComplete="off"
            required
            value={token}
            onChange={(e) => setToken(e.target.value)}
          />
          <p className="hint">
            The token is exchanged for a session cookie and not kept by the browser. Create one with{' '}
            <code>gangway token create</code>.
          </p>
          <button type="submit" disabled={busy || !token.trim()}>
            Sign in
          </button>
        </form>
        <ErrorBox error={error} />
      </section>
    </main>
  );
}
