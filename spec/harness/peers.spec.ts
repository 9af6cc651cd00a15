/**
 * Missing optional peers are named all at once, with the one command that installs them
 * (src/harness/peers.ts), for the browser door and the built-ins. The resolver is a stub: the
 * peers are installed in this repository.
 */
import { describe, expect, it } from 'vitest';
import { createBuiltin } from '../../src/harness/builtins.js';
import { installedPeer, missingPeers, requirePeers, type PeerResolver } from '../../src/harness/peers.js';

const none: PeerResolver = () => false;
const only = (...present: string[]): PeerResolver => (n) => present.includes(n);

describe('optional peers', () => {
  it('the browser door: every missing peer in one message, with one install command', () => {
    expect(() => requirePeers('the browser door', { peers: ['playwright-core', 'esbuild'] }, none)).toThrow(
      'the browser door cannot start: missing optional peers: playwright-core, esbuild. Install them: npm i -D playwright-core esbuild',
    );
    expect(() => requirePeers('the browser door', { peers: ['playwright-core', 'esbuild'] }, only('playwright-core'))).toThrow(
      'missing optional peer: esbuild. Install it: npm i -D esbuild',
    );
    expect(() => requirePeers('the browser door', { peers: ['playwright-core', 'esbuild'] }, only('playwright-core', 'esbuild'))).not.toThrow();
  });

  it('and a missing Chromium in the same message', () => {
    const e = (() => {
      try {
        requirePeers('the browser door', { peers: ['playwright-core', 'esbuild'], chromium: { executable: '/nonexistent/chromium' } }, only('esbuild'));
      } catch (err) {
        return err as Error;
      }
      return undefined;
    })();
    expect(e?.name).toBe('UsageError');
    expect(e?.message).toBe(
      'the browser door cannot start: missing optional peer: playwright-core. Install it: npm i -D playwright-core; and no Chromium at /nonexistent/chromium: install one (Debian: apt-get install -y chromium) or name it with --browser-executable PATH or BN_CHROMIUM=PATH',
    );
  });

  it('built-ins name what they need before starting: gpu.js; the browser ones their packages, the door\'s and Chromium', async () => {
    await expect(createBuiltin('gpu', undefined, none)).rejects.toThrow('the gpu built-in cannot start: missing optional peer: gpu.js. Install it: npm i -D gpu.js');
    const mode = process.env.BN_GPU_MODE;
    const chromium = process.env.BN_CHROMIUM;
    process.env.BN_GPU_MODE = 'webgl2';
    process.env.BN_CHROMIUM = '/nonexistent/chromium';
    try {
      await expect(createBuiltin('gpu', undefined, none)).rejects.toThrow(
        /^the gpu built-in cannot start: missing optional peers: gpu\.js, playwright-core, esbuild\. Install them: npm i -D gpu\.js playwright-core esbuild; and no Chromium at \/nonexistent\/chromium/,
      );
      await expect(createBuiltin('tfjs-webgpu', undefined, only('esbuild'))).rejects.toThrow(
        'missing optional peers: @tensorflow/tfjs, @tensorflow/tfjs-backend-webgpu, playwright-core. Install them: npm i -D @tensorflow/tfjs @tensorflow/tfjs-backend-webgpu playwright-core',
      );
    } finally {
      if (mode === undefined) delete process.env.BN_GPU_MODE;
      else process.env.BN_GPU_MODE = mode;
      if (chromium === undefined) delete process.env.BN_CHROMIUM;
      else process.env.BN_CHROMIUM = chromium;
    }
    // our own kernels need nothing
    await expect(createBuiltin('reference', undefined, none)).resolves.toBeDefined();
  });

  it('the real resolver finds the peers installed here, and not a package that does not exist', () => {
    expect(missingPeers(['playwright-core', 'esbuild', 'gpu.js'], installedPeer)).toEqual([]);
    expect(missingPeers(['no-such-package-bn-conformance'], installedPeer)).toEqual(['no-such-package-bn-conformance']);
  });
});
