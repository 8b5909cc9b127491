/**
 * The error every Convoy API throws and every client receives.
 *
 * Handlers may throw their own codes (`new ConvoyError('PROJECT_LIMIT', '…', { limit: 3 })`);
 * the client receives exactly that code, message and data.
 */

export const ErrorCode = {
  INVALID_ARGS: 'INVALID_ARGS',
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UNAVAILABLE: 'UNAVAILABLE',
  INTERNAL: 'INTERNAL',
} as const;

export type BuiltinErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
/** A built-in code, or any code of the app's own (autocomplete keeps the built-in ones). */
export type ErrorCodeName = BuiltinErrorCode | (string & {});

/** HTTP status of each built-in code; an app's own codes answer 400. */
export const httpStatusOf: Record<BuiltinErrorCode, number> = {
  INVALID_ARGS: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNAVAILABLE: 503,
  INTERNAL: 500,
};

// A registry-wide symbol, so that two copies of this package (a bundled client and the server's)
// still recognise each other's errors.
const brand = Symbol.for('@avvos/convoy/ConvoyError');

export interface ConvoyErrorShape {
  code: string;
  message: string;
  data?: unknown;
}

export class ConvoyError<Data = unknown> extends Error {
  readonly code: ErrorCodeName;
  readonly data: Data | undefined;
  readonly [brand] = true;

  constructor(code: ErrorCodeName, message?: string, data?: Data) {
    super(message ?? code);
    this.name = 'ConvoyError';
    this.code = code;
    this.data = data;
  }

  static [Symbol.hasInstance](value: unknown): boolean {
    return isConvoyError(value);
  }

  toJSON(): ConvoyErrorShape {
    const shape: ConvoyErrorShape = { code: this.code, message: this.message };
    if (this.data !== undefined) shape.data = this.data;
    return shape;
  }

  /** Rebuilds an error from its wire shape (`{ code, message, data? }`). */
  static fromJSON(shape: ConvoyErrorShape): ConvoyError {
    return new ConvoyError(shape.code, shape.message, shape.data);
  }
}

export function isConvoyError(value: unknown): value is ConvoyError {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
}
