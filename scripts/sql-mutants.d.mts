// Types of scripts/sql-mutants.mjs, for the tests that import it.
import type { ClientBase } from 'pg';

export interface Segment {
  readonly kind: 'code' | 'string' | 'comment';
  readonly start: number;
  readonly end: number;
}
export interface Edit {
  readonly kind: 'flip' | 'drop-raise' | 'function-org' | 'hold-expiry' | 'policy-org';
  readonly start: number;
  readonly end: number;
  readonly replacement: string;
  readonly line?: number;
}
export interface SqlMutant {
  readonly id: string;
  readonly kind: Edit['kind'];
  readonly object: string;
  readonly change: string;
  readonly statements: readonly string[];
}
export function segments(text: string): Segment[];
export function bodyEdits(body: string): Edit[];
export function policyEdits(expr: string): Edit[];
export function catalogMutants(client: ClientBase): Promise<SqlMutant[]>;
export function spread<T extends { readonly kind: string }>(mutants: readonly T[], max: number): T[];
