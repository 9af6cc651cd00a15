/**
 * Optional peers: packages a door or a built-in needs that a plain install does not bring
 * (playwright-core and esbuild for the browser door, gpu.js for the gpu kernel, the framework
 * packages for their adapters). Each is looked up before anything starts, and every missing one
 * is named in one error with the one command that installs them all, instead of one error per
 * attempt.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { UsageError } from '../contract/errors.js';
import { DEFAULT_CHROMIUM } from './browser/chromium.js';

/** Whether a package is installed where this package's own `import()` would find it. */
export type PeerResolver = (name: string) => boolean;

/**
 * A directory `<node_modules>/<name>` with a package.json on Node's lookup path from this file
 * (the user's node_modules when installed there). Not require.resolve: an ES-module-only
 * package without a "require" export would look missing.
 */
export const installedPeer: PeerResolver = (name) => {
  const req = createRequire(import.meta.url);
  return (req.resolve.paths(name) ?? []).some((d) => existsSync(join(d, name, 'package.json')));
};

export interface PeerNeeds {
  /** Packages, in the order the message lists them. */
  peers: string[];
  /** A Chromium executable too (the browser door): the --browser-executable option, else BN_CHROMIUM, else /usr/bin/chromium. */
  chromium?: boolean | { executable?: string };
}

/** The missing ones, in order. */
export function missingPeers(peers: readonly string[], resolve: PeerResolver = installedPeer): string[] {
  return [...new Set(peers)].filter((p) => !resolve(p));
}

/**
 * Throw one UsageError naming every missing peer (and a missing Chromium) for `what`:
 * "missing optional peers: playwright-core, esbuild. Install them: npm i -D playwright-core esbuild".
 */
export function requirePeers(what: string, needs: PeerNeeds, resolve: PeerResolver = installedPeer): void {
  const missing = missingPeers(needs.peers, resolve);
  const problems: string[] = [];
  if (missing.length) {
    problems.push(`missing optional peer${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}. Install ${missing.length > 1 ? 'them' : 'it'}: npm i -D ${missing.join(' ')}`);
  }
  if (needs.chromium) {
    const path = (typeof needs.chromium === 'object' && needs.chromium.executable) || process.env.BN_CHROMIUM || DEFAULT_CHROMIUM;
    if (!existsSync(path)) problems.push(`no Chromium at ${path}: install one (Debian: apt-get install -y chromium) or name it with --browser-executable PATH or BN_CHROMIUM=PATH`);
  }
  if (problems.length) throw new UsageError(`${what} cannot start: ${problems.join('; and ')}`);
}

/** What the browser door needs: playwright-core, esbuild, Chromium. */
export const BROWSER_DOOR_PEERS = ['playwright-core', 'esbuild'] as const;
