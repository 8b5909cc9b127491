/**
 * What the dashboard's API answers. The server's own types (src/dashboard/) where they are
 * plain data, so that the page and the server cannot drift; the JSON Schema the page reads is
 * spelled out here, where the server passes it on as any object.
 */
import type { LogEntry } from '../../src/dashboard/callLog.js';
import type { GraduationProgress } from '../../src/dashboard/graduation.js';
import type { TableInfo as ServerTableInfo, Stage } from '../../src/dashboard/tables.js';
import type { ConformanceReport, FailureGroup } from '../../src/graduation/conformance.js';

export type { ConformanceReport, FailureGroup, GraduationProgress, LogEntry, Stage };

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

export type TableInfo = Omit<ServerTableInfo, 'fields'> & { fields: JsonSchema };

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
