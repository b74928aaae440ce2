export interface Config {
  /** Gangway, the job broker behind the portal's self-service actions. */
  gangway?: {
    /**
     * Base URL of Gangway's API, e.g. http://gangway.internal:8080 (no /v1).
     */
    baseUrl: string;
    /**
     * Base URL of Gangway's web console, for links to runs (/ui/runs/{id}).
     * Default: baseUrl.
     */
    consoleUrl?: string;
    /**
     * Whose credentials a run is submitted with.
     * `user` (default): the user who started the scaffolder task, as a
     * Backstage plugin token carrying that user (`obo`); Gangway's RBAC,
     * approvals and audit see the person.
     * `service`: the Gangway API token in `token`; every run is that
     * service account's. Only when chosen here.
     */
    credentials?: 'user' | 'service';
    /**
     * With credentials `service`: send `Gangway-On-Behalf-Of: <the task's
     * user>` (and `Gangway-On-Behalf-Of-Teams` from the user entity's
     * memberOf), so the run is the user's; the token needs Gangway's token
     * role act_on_behalf (docs/policy.md). Default false.
     */
    onBehalfOf?: boolean;
    /**
     * A Gangway API token (gwt_...): used for runs only when credentials is
     * `service`; used to list actions for gangway:<id> generation and by
     * the catalog module when set.
     * @visibility secret
     */
    token?: string;
    /** The plugin id Gangway expects as the plugin token's audience (default `gangway`). */
    targetPluginId?: string;
    /**
     * Register one action per Gangway action (`gangway:<id>`) with its
     * input schema, listed once at startup. Default false.
     */
    generateActions?: boolean;
    timeouts?: {
      /** One API request, in seconds (default 30). */
      requestSeconds?: number;
      /** Longest wait for a run to end, approvals included, in seconds (default 86400). */
      runSeconds?: number;
      /** How often the run's status is read while waiting, in seconds (default 2). */
      pollSeconds?: number;
    };
  };
}
