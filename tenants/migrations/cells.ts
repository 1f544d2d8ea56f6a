import type pg from 'pg';

/** A PostgreSQL database holding tenant schemas. */
export interface Cell {
  readonly id: string;
  readonly pool: pg.Pool;
}

/** Finds the cell a tenant lives in, by the catalog's cell id. */
export interface CellDirectory {
  cell(id: string): Cell;
}

/** Today's layout: every cell id names the one database that also holds the catalog. */
export function singleDatabaseCells(pool: pg.Pool): CellDirectory {
  return { cell: (id) => ({ id, pool }) };
}
