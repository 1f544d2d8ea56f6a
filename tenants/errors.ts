/** Thrown when an operation names a tenant the catalog does not hold. */
export class TenantNotFoundError extends Error {
  override readonly name = 'TenantNotFoundError';
  constructor(readonly tenantId: string) {
    super(`tenant '${tenantId}' does not exist`);
  }
}

/** PostgreSQL could not be reached at all. */
export class DatabaseUnavailableError extends Error {
  override readonly name = 'DatabaseUnavailableError';
}
