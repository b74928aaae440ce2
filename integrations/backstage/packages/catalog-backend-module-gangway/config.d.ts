export interface Config {
  gangway?: {
    /** Base URL of Gangway's API, e.g. http://gangway.internal:8080. */
    baseUrl: string;
    /** Base URL of Gangway's web console (links on the entities). Default: baseUrl. */
    consoleUrl?: string;
    /**
     * A Gangway API token whose read_runs scope covers every resource to
     * show (docs/policy.md), e.g. a service account with an admin role.
     * Without it the catalog calls Gangway as itself (a Backstage plugin
     * token without obo, accepted by an auth-config entry with
     * "obo_required": false).
     * @visibility secret
     */
    token?: string;
    /** The plugin id Gangway expects as the plugin token's audience (default `gangway`). */
    targetPluginId?: string;
    catalog?: {
      /** Namespace of the Resource entities (default `default`). */
      namespace?: string;
      /** Entity namespace of the owner groups (default `default`). */
      ownerNamespace?: string;
      /** Full resync interval in seconds besides the live stream (default 3600; 0: only at start and reconnects). */
      resyncSeconds?: number;
    };
  };
}
