import { useMemo, useRef, useState } from 'react';
import { Link, useLocation, useNavigate, useParams } from 'react-router';
import Form from '@rjsf/core';
import type { IChangeEvent } from '@rjsf/core';
import { ApiError, get, post, type Action, type ProblemError, type Run } from '../api';
import { ErrorBox, Loading, useLoad } from '../components/common';
import { useSession } from '../session';
import validator, { formSchema } from '../validator';
import { canBreakGlass, formatSeconds, needsApproval, newIdempotencyKey, pointerErrors, ttlChoices, uiSchemaFor } from '../util';

export default function RequestPage() {
  const { id = '' } = useParams();
  const { data: action, error, loading } = useLoad((s) => get<Action>('/v1/actions/' + encodeURIComponent(id), s), [id]);
  if (loading && !action) return <Loading />;
  if (!action) return <ErrorBox error={error} />;
  return <RequestForm key={action.id + action.version} action={action} />;
}

export function RequestForm({ action }: { action: Action }) {
  const { me } = useSession();
  const navigate = useNavigate();
  // "Request again" from a run page brings that run's inputs along.
  const location = useLocation();
  const prefill = (location.state as { inputs?: Record<string, unknown> } | null)?.inputs;
  const schema = useMemo(() => formSchema(action.inputs), [action.inputs]);
  const uiSchema = useMemo(() => uiSchemaFor(schema), [schema]);
  const [formData, setFormData] = useState<Record<string, unknown>>(() => ({ ...(prefill ?? {}) }));
  const [extraErrors, setExtraErrors] = useState<Record<string, unknown> | undefined>();
  const [topErrors, setTopErrors] = useState<ProblemError[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const choices = ttlChoices(action);
  const [ttl, setTtl] = useState<number | ''>(action.ttl?.default_seconds ?? '');
  const [justification, setJustification] = useState('');
  const [breakGlass, setBreakGlass] = useState(false);
  const [reason, setReason] = useState('');
  // One Idempotency-Key per form instance: a double click, or a retry after a
  // lost answer, is the same request and makes one run.
  const key = useRef(newIdempotencyKey());
  const inFlight = useRef(false);

  const mayBreakGlass = needsApproval(action) && canBreakGlass(me, action.id, formData);

  const submit = async (e: IChangeEvent) => {
    if (inFlight.current) return;
    inFlight.current = true;
    setBusy(true);
    setError(null);
    setExtraErrors(undefined);
    setTopErrors([]);
    const body: Record<string, unknown> = { inputs: e.formData ?? {} };
    if (ttl !== '' && action.ttl) body.ttl_seconds = ttl;
    if (justification.trim()) body.justification = justification.trim();
    if (breakGlass && mayBreakGlass) body.break_glass = { reason };
    try {
      const run = await post<Run>('/v1/actions/' + encodeURIComponent(action.id) + '/runs', body, {
        'Idempotency-Key': key.current,
      });
      navigate('/runs/' + run.id);
    } catch (err) {
      if (err instanceof ApiError && err.status > 0) {
        // The broker answered: no run was made, a changed form is a new request.
        key.current = newIdempotencyKey();
        if (err.problem.errors?.length) {
          const { schema: fieldErrors, rest } = pointerErrors(err.problem.errors, '/inputs');
          setExtraErrors(Object.keys(fieldErrors).length ? fieldErrors : undefined);
          setTopErrors(rest);
          if (!rest.length) {
            inFlight.current = false;
            setBusy(false);
            return;
          }
        }
      }
      setError(err);
    } finally {
      inFlight.current = false;
      setBusy(false);
    }
  };

  const errFor = (ptr: string) => topErrors.filter((e) => e.pointer === ptr || e.pointer.startsWith(ptr + '/'));
  const fieldError = (ptr: string, id: string) =>
    errFor(ptr).length ? (
      <ul className="field-errors" id={id}>
        {errFor(ptr).map((e, i) => (
          <li key={i} className="text-danger">
            {e.message}
          </li>
        ))}
      </ul>
    ) : null;

  return (
    <section>
      <p>
        <Link to="/catalog">← Catalog</Link>
      </p>
      <h1>{action.title}</h1>
      {action.description && <p>{action.description}</p>}
      <p className="muted">
        <code>{action.id}</code> · worker type <code>{action.worker_type}</code>
        {needsApproval(action) && <span className="badge approval">needs approval</span>}
      </p>
      <Form
        schema={schema}
        uiSchema={uiSchema}
        validator={validator}
        formData={formData}
        onChange={(e) => setFormData(e.formData ?? {})}
        onSubmit={submit}
        extraErrors={extraErrors as never}
        showErrorList={false}
        noHtml5Validate
        idPrefix="in"
      >
      <fieldset className="request-extra">
        <legend>Request</legend>
        {action.ttl && choices.length > 0 && (
          <div className="field">
            <label htmlFor="ttl">Lifetime of the {action.resource?.kind ?? 'resource'}</label>
            <select id="ttl" value={ttl} onChange={(e) => setTtl(Number(e.target.value))} aria-describedby="ttl-hint ttl-err">
              {choices.map((c) => (
                <option key={c.seconds} value={c.seconds}>
                  {c.label}
                  {c.seconds === action.ttl?.default_seconds ? ' (default)' : ''}
                </option>
              ))}
            </select>
            <p className="hint" id="ttl-hint">
              At most {formatSeconds(action.ttl.max_seconds ?? action.ttl.default_seconds ?? 0)}
              {action.ttl.max_extension_seconds ? `, extendable by ${formatSeconds(action.ttl.max_extension_seconds)}` : ''}.
            </p>
            {fieldError('/ttl_seconds', 'ttl-err')}
          </div>
        )}
        <div className="field">
          <label htmlFor="justification">Justification (optional)</label>
          <textarea id="justification" maxLength={1000} value={justification} onChange={(e) => setJustification(e.target.value)} aria-describedby="just-err" />
          {fieldError('/justification', 'just-err')}
        </div>
        {mayBreakGlass && (
          <div className="field breakglass">
            <label>
              <input type="checkbox" checked={breakGlass} onChange={(e) => setBreakGlass(e.target.checked)} /> Break glass: run
              without approval (flagged in the audit log and notified)
            </label>
            {breakGlass && (
              <>
                <label htmlFor="bg-reason">Reason (at least 10 characters)</label>
                <textarea id="bg-reason" required minLength={10} maxLength={1000} value={reason} onChange={(e) => setReason(e.target.value)} aria-describedby="bg-err" />
                {fieldError('/break_glass', 'bg-err')}
              </>
            )}
          </div>
        )}
      </fieldset>
      <button type="submit" className="primary" disabled={busy}>
        {busy ? 'Submitting…' : 'Submit request'}
      </button>
      </Form>
      <ErrorBox error={error} />
    </section>
  );
}
