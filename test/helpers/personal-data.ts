/** Shared by the raw-file tests of personal data (test/stores/<backend>/personal-data.test.ts). */
import type { NewEvent } from '../../src/index.js';

/** Whether `haystack` holds `key` raw, as hex or as base64. */
export const holdsKey = (haystack: Buffer, key: Buffer): boolean =>
  haystack.includes(key) || haystack.includes(key.toString('hex')) || haystack.includes(key.toString('base64'));

/** A personal event: `email` sealed, `plan` a plain marker the raw files must hold. */
export const signedUp = (subject: string, email: string): NewEvent => ({
  type: 'UserSignedUp',
  data: { email, plan: 'PLAIN-MARKER' },
  metadata: { subject, personal: ['email'] },
});
