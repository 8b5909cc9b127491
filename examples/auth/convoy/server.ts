// convoy/server.ts — who is calling: a JWT, verified with jose (PRODUCT.md § Bring Your Own Auth).
import { ConvoyError } from '@avvos/convoy';
import { errors, jwtVerify } from 'jose';
import { defineContext } from './_generated/server.js';

export const ISSUER = 'https://auth.example.com';
export const AUDIENCE = 'convoy-notes';

/** The key tokens are signed with (HS256). With an identity provider, use its JWKS instead. */
function signingKey(): Uint8Array {
  const secret = process.env.JWT_SECRET;
  if (!secret || secret.length < 32) {
    throw new Error('Set JWT_SECRET to a random string of at least 32 characters');
  }
  return new TextEncoder().encode(secret);
}

/**
 * Runs once per request and once per sync stream. No token: an anonymous caller (`auth: null`),
 * whom the functions may refuse. A token that is forged, tampered with, expired or meant for
 * another service: `UNAUTHORIZED`, and nothing runs. `defineContext` types `req` and `base`, so
 * strict TypeScript needs no annotations here; what it returns types `ctx.auth` in every handler.
 */
export const createContext = defineContext(async (req, base) => {
  const header = req.headers.authorization;
  if (!header) return { ...base, auth: null };
  const token = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : '';
  try {
    const { payload } = await jwtVerify(token, signingKey(), {
      issuer: ISSUER,
      audience: AUDIENCE,
      algorithms: ['HS256'],
    });
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new errors.JWTInvalid('no subject');
    return { ...base, auth: { userId: payload.sub } };
  } catch (error) {
    if (error instanceof errors.JWTExpired) throw new ConvoyError('UNAUTHORIZED', 'The token has expired');
    if (error instanceof errors.JOSEError) throw new ConvoyError('UNAUTHORIZED', 'The token is not valid');
    throw error;
  }
});
