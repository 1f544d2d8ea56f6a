/** Names shared by the tenant chart, the platform RBAC and the Kubernetes client; imports nothing. */

/** The ResourceQuota the tenant chart renders in each tenant namespace. */
export const TENANT_QUOTA_NAME = 'tenant-quota';
/** The namespace carries this annotation while the tenant's work is stopped (limited or suspended). */
export const STOP_TASKS_ANNOTATION = 'agent-platform.io/stop-tasks';
/** Field manager of the tenant chart (server-side apply); the name `kubectl apply --server-side` used. */
export const TENANT_FIELD_MANAGER = 'agent-platform-tenants';
/** Field manager of the stop-work changes (quota counts, namespace annotation). */
export const STOP_WORK_FIELD_MANAGER = 'agent-platform-cost-guard';
