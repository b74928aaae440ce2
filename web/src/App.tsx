import { lazy, Suspense, useCallback, useEffect, useState } from 'react';
import { NavLink, Navigate, Route, Routes, useLocation } from 'react-router';
import { ApiError, del, get, setCsrfToken, type Me, type Session } from './api';
import { SessionContext } from './session';
import { isAdmin } from './util';
import { Loading } from './components/common';
import LoginPage from './pages/Login';
import CatalogPage from './pages/Catalog';
import RunPage from './pages/Run';
import RunsPage from './pages/Runs';
import ApprovalsPage from './pages/Approvals';
import ResourcesPage from './pages/Resources';
import AuditPage from './pages/Audit';

// The form renderer (rjsf + AJV) and the chart library are half the bundle:
// loaded with the pages that use them, so the catalog comes up sooner.
const RequestPage = lazy(() => import('./pages/Request'));
const DashboardPage = lazy(() => import('./pages/Dashboard'));

export default function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [me, setMe] = useState<Me | null>(null);
  const [checked, setChecked] = useState(false);
  const location = useLocation();

  const refresh = useCallback(async () => {
    try {
      // Both at once: one round trip less before the first page.
      const [s, m] = await Promise.all([get<Session>('/v1/session'), get<Me>('/v1/me')]);
      setCsrfToken(s.csrf_token);
      setSession(s);
      setMe(m);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 401) console.warn('session check failed', e);
      setCsrfToken(null);
      setSession(null);
      setMe(null);
    } finally {
      setChecked(true);
    }
  }, []);

  const signOut = useCallback(async () => {
    try {
      await del('/v1/session');
    } finally {
      setCsrfToken(null);
      setSession(null);
      setMe(null);
    }
  }, []);

  useEffect(() => {
    void refresh();
  }, [refresh]);

  if (!checked) return <Loading />;

  const ctx = { session, me, refresh, signOut };
  if (!session) {
    return (
      <SessionContext.Provider value={ctx}>
        <Routes>
          <Route path="/login" element={<LoginPage />} />
          <Route path="*" element={<Navigate to={'/login?next=' + encodeURIComponent(location.pathname + location.search)} replace />} />
        </Routes>
      </SessionContext.Provider>
    );
  }

  const auditor = isAdmin(me) || !!me?.permissions?.includes('read_audit');
  return (
    <SessionContext.Provider value={ctx}>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">Gangway</span>
        <nav aria-label="Main">
          <NavLink to="/catalog">Catalog</NavLink>
          <NavLink to="/runs">Runs</NavLink>
          <NavLink to="/approvals">Approvals</NavLink>
          <NavLink to="/resources">Resources</NavLink>
          {auditor && <NavLink to="/audit">Audit</NavLink>}
          <NavLink to="/dashboard">Dashboard</NavLink>
        </nav>
        <span className="who">
          <span aria-label="Signed in as">{session.subject}</span>
          {session.teams?.length ? <span className="muted"> ({session.teams.join(', ')})</span> : null}{' '}
          <button type="button" onClick={() => void signOut()}>
            Sign out
          </button>
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        <Suspense fallback={<Loading />}>
        <Routes>
          <Route path="/" element={<Navigate to="/catalog" replace />} />
          <Route path="/login" element={<Navigate to="/catalog" replace />} />
          <Route path="/catalog" element={<CatalogPage />} />
          <Route path="/actions/:id" element={<RequestPage />} />
          <Route path="/runs" element={<RunsPage />} />
          <Route path="/runs/:id" element={<RunPage />} />
          <Route path="/approvals" element={<ApprovalsPage />} />
          <Route path="/resources" element={<ResourcesPage />} />
          <Route path="/resources/:id" element={<ResourcesPage />} />
          <Route path="/audit" element={<AuditPage />} />
          <Route path="/dashboard" element={<DashboardPage />} />
          <Route path="*" element={<NotFound />} />
        </Routes>
        </Suspense>
      </main>
    </SessionContext.Provider>
  );
}

function NotFound() {
  return (
    <section>
      <h1>Not found</h1>
      <p>There is no page here.</p>
    </section>
  );
}
