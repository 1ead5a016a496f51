import { describe, expect, it } from 'vitest';
import { thrownCode } from '../testing.js';
import * as crypto from './crypto.js';
import { addMask, pairSign, prgUint32 } from './masks.js';
import { seededRandomBytes } from './testing.js';

describe('share encryption (XChaCha20-Poly1305 under HKDF of X25519)', () => {
  const random = seededRandomBytes(1);
  const alice = crypto.generateKeyPair(random);
  const bob = crypto.generateKeyPair(random);
  const round = 'round-7';
  const shared = crypto.agree(alice.secretKey, bob.publicKey);
  const toBob = crypto.shareKey(round, 1, 2, shared);
  const plaintext = random(66);
  const sealed = crypto.sealShare(toBob, round, 1, 2, plaintext, random);

  it('opens on the receiver, who derives the same key from its own secret', () => {
    const asBob = crypto.shareKey(round, 1, 2, crypto.agree(bob.secretKey, alice.publicKey));
    expect(asBob).toEqual(toBob);
    expect(crypto.openShare(asBob, round, 1, 2, sealed)).toEqual(plaintext);
  });

  it('refuses every changed byte with HEARTH_E_SECAGG_SHARE', () => {
    for (let i = 0; i < sealed.length; i++) {
      const tampered = sealed.slice();
      tampered[i] = tampered[i]! ^ 0x01;
      expect(thrownCode(() => crypto.openShare(toBob, round, 1, 2, tampered))).toBe(
        'HEARTH_E_SECAGG_SHARE',
      );
    }
    expect(thrownCode(() => crypto.openShare(toBob, round, 1, 2, sealed.subarray(0, 30)))).toBe(
      'HEARTH_E_SECAGG_SHARE',
    );
  });

  it('binds round, sender and receiver: a ciphertext replayed elsewhere fails its tag', () => {
    const refused = (r: string, from: number, to: number) =>
      thrownCode(() => crypto.openShare(toBob, r, from, to, sealed));
    expect(refused('round-8', 1, 2)).toBe('HEARTH_E_SECAGG_SHARE');
    expect(refused(round, 2, 1)).toBe('HEARTH_E_SECAGG_SHARE');
    expect(refused(round, 1, 3)).toBe('HEARTH_E_SECAGG_SHARE');
  });

  it('uses a different key per direction and per round, though the X25519 secret is shared', () => {
    const toAlice = crypto.shareKey(round, 2, 1, crypto.agree(bob.secretKey, alice.publicKey));
    expect(toAlice).not.toEqual(toBob);
    expect(crypto.shareKey('round-8', 1, 2, shared)).not.toEqual(toBob);
  });

  it('refuses a low-order public key (all-zero shared secret) as a malformed message', () => {
    const zero = new Uint8Array(32);
    expect(thrownCode(() => crypto.agree(alice.secretKey, zero))).toBe('HEARTH_E_SECAGG_MESSAGE');
  });

  it('encodes contexts unambiguously (length-prefixed round id)', () => {
    expect(crypto.context('p', 'ab', 1)).not.toEqual(crypto.context('p', 'a', 1));
    expect(crypto.context('p', 'a\u0000', 1)).not.toEqual(crypto.context('p', 'a', 1));
  });
});

describe('mask PRG (ChaCha20 keystream as little-endian uint32)', () => {
  it('matches the RFC 8439 keystream for the all-zero key and nonce', () => {
    // RFC 8439 appendix A.1, test vector 1: keystream 76 b8 e0 ad a0 f1 3d 90 ...
    expect([...prgUint32(new Uint8Array(32), 2)]).toEqual([0xade0b876, 0x903df1a0]);
  });

  it('is deterministic in its key and differs between keys', () => {
    const random = seededRandomBytes(2);
    const key = random(32);
    expect(prgUint32(key, 1000)).toEqual(prgUint32(key, 1000));
    expect(prgUint32(key, 1000)).not.toEqual(prgUint32(random(32), 1000));
    expect(prgUint32(key, 10)).toEqual(prgUint32(key, 1000).subarray(0, 10));
  });

  it('cancels a pair: both ends derive one key and add it with opposite signs', () => {
    const random = seededRandomBytes(3);
    const u = crypto.generateKeyPair(random);
    const v = crypto.generateKeyPair(random);
    const keyU = crypto.pairMaskKey('r', 4, 9, crypto.agree(u.secretKey, v.publicKey));
    const keyV = crypto.pairMaskKey('r', 9, 4, crypto.agree(v.secretKey, u.publicKey));
    expect(keyU).toEqual(keyV);
    const x = Uint32Array.from({ length: 64 }, (_, i) => i * 0x9e3779b9);
    const y = x.slice();
    addMask(y, prgUint32(keyU, 64), pairSign(4, 9));
    expect(y).not.toEqual(x);
    addMask(y, prgUint32(keyV, 64), pairSign(9, 4));
    expect(y).toEqual(x);
  });
});
