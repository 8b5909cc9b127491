/** What the dashboard's API answers (src/dashboard/ on the server side). */

export type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  const?: unknown;
  format?: string;
  description?: string;
  'x-ref'?: string;
  [key: string]: unknown;
};

export interface Info {
  dev: boolean;
  keyed: boolean;
  serverUrl: string;
  tables: number;
  functions: number;
}

export type Stage = 'documents' | 'relational' | 'graduating' | 'unmanaged';

export interface TableInfo {
  name: string;
  stage: Stage;
  declared: Stage;
  rows: number | null;
  rowsAtLeast: boolean;
  indexes: Array<{ name: string; fields: string[] }>;
  fields: JsonSchema;
}

export type Doc = Record<string, unknown> & { _id: string | number; _creationTime?: number };

export interface Page {
  page: Doc[];
  isDone: boolean;
  continueCursor: string;
}

export interface FunctionInfo {
  path: string;
  kind: 'query' | 'mutation';
  args: JsonSchema;
  timeoutMs?: number;
}

export interface LogEntry {
  id: number;
  time: number;
  path: string;
  kind: 'query' | 'mutation';
  status: 'running' | 'ok' | 'error';
  code?: string;
  message?: string;
  stack?: string;
  ms?: number;
  retries: number;
  args: string;
}

export interface GraduationProgress {
  table: string;
  step: string;
  rowsDone: number;
  rowsTotal: number;
  batchSize: number;
  startedAt: string;
  updatedAt: string;
  rate: number;
}

export interface FailureGroup {
  field: string;
  reason: string;
  rule: string;
  count: number;
  sampleIds: string[];
  foundBy: string[];
  fix: { kind: string; text: string; sql?: string };
}

export interface ConformanceReport {
  table: string;
  conforms: boolean;
  documents: number;
  failingDocuments: number;
  failures: FailureGroup[];
  fast: { ms: number };
  exact: { ms: number; batches: number };
  warnings: Array<{ message: string }>;
  zodOnly: Array<{ field: string; rules: string[] }>;
  notes: string[];
}
