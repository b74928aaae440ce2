import { createContext, useContext } from 'react';
import type { Me, Session } from './api';

export interface SessionState {
  session: Session | null;
  me: Me | null;
  refresh: () => Promise<void>;
  signOut: () => Promise<void>;
}

export const SessionContext = createContext<SessionState>({
  session: null,
  me: null,
  refresh: async () => {},
  signOut: async () => {},
});

export const useSession = () => useContext(SessionContext);
