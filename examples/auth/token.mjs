// Mints a token for trying the example by hand: JWT_SECRET=… node token.mjs alice [seconds]
// In a real app your identity provider (Auth0, Clerk, Supabase Auth, your own login) does this.
import { SignJWT } from 'jose';

const [user = 'alice', seconds = '3600'] = process.argv.slice(2);
const secret = process.env.JWT_SECRET;
if (!secret || secret.length < 32) {
  console.error('Set JWT_SECRET to the same string of at least 32 characters that the server has');
  process.exit(1);
}
const token = await new SignJWT({})
  .setProtectedHeader({ alg: 'HS256' })
  .setSubject(user)
  .setIssuer('https://auth.example.com')
  .setAudience('convoy-notes')
  .setIssuedAt()
  .setExpirationTime(`${Number(seconds)}s`)
  .sign(new TextEncoder().encode(secret));
console.log(token);
