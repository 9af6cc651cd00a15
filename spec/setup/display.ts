/**
 * vitest globalSetup: headless-gl (the gpu.js kernel's GPU path in Node) needs an X display.
 * When none is set and Xvfb is installed, start one for the run, so `npm test` alone exercises
 * the GLSL path here and in CI. Without Xvfb the GPU specs skip and say why.
 */
import { spawn, type ChildProcess, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

let xvfb: ChildProcess | undefined;

export async function setup(): Promise<void> {
  if (process.env.DISPLAY || spawnSync('which', ['Xvfb']).status !== 0) return;
  for (let n = 90 + (process.pid % 50); n < 200; n++) {
    if (existsSync(`/tmp/.X11-unix/X${n}`) || existsSync(`/tmp/.X${n}-lock`)) continue;
    const proc = spawn('Xvfb', [`:${n}`, '-screen', '0', '1024x768x24', '-nolisten', 'tcp'], { stdio: 'ignore' });
    for (let waited = 0; waited < 5000 && !existsSync(`/tmp/.X11-unix/X${n}`) && proc.exitCode === null; waited += 50) {
      await new Promise((r) => setTimeout(r, 50));
    }
    if (existsSync(`/tmp/.X11-unix/X${n}`)) {
      xvfb = proc;
      process.env.DISPLAY = `:${n}`;
      return;
    }
    proc.kill();
  }
}

export async function teardown(): Promise<void> {
  xvfb?.kill();
}
