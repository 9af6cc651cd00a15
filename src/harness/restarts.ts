/**
 * The restart and give-up rule shared by every door: after a fault that leaves the
 * implementation in an unknown state (a timeout, a death), the --exec child and the isolation
 * worker are replaced by fresh ones for the next call; the in-process door cannot reload an
 * object, so it goes on with the same one and says so. Either way at most `maxRestarts` times;
 * after that every call fails at once with the door's give-up fault, naming the faults seen, so
 * an implementation that hangs on every call ends the run in about maxRestarts x the time limit
 * instead of calls x the time limit. One rule, one default.
 */

/** Restarts allowed before a door gives up. A hostile implementation faults on every call; five fresh starts show it is not a one-off. */
export const DEFAULT_MAX_RESTARTS = 5;

export class RestartBudget {
  restarts = 0;
  /** One line per fault and restart, `<fault>: <message>` or `restarted the <what> (restart n)`, for the report's footer. */
  readonly events: string[] = [];

  constructor(
    private readonly what: 'child' | 'worker' | 'in-process implementation' | 'page',
    private readonly maxRestarts: number,
    private readonly giveUp: (message: string) => Error,
    /** What a restart does: `restarted` (a fresh process), `reloaded` (a fresh page, the browser door), or `continued with` (the same object, in process). */
    private readonly verb: 'restarted' | 'reloaded' | 'continued with' = 'restarted',
  ) {}

  /** Record a fault (its message starts with the fault's name). */
  note(event: string): void {
    if (event) this.events.push(event);
  }

  /** A fresh process is about to start after a fault: count it, or throw the give-up fault. */
  restart(): void {
    if (this.restarts >= this.maxRestarts) {
      const faults = this.events.filter((e) => !e.startsWith(`${this.verb} `));
      const names = [...new Set(faults.map((e) => e.split(':')[0] ?? ''))].join(', ');
      const did = this.verb === 'continued with' ? 'continued after a fault' : this.verb;
      throw this.giveUp(`the ${this.what} was ${did} ${this.restarts} times; no more restarts (faults seen: ${names}; last: ${faults.at(-1) ?? ''})`);
    }
    this.restarts++;
    this.events.push(`${this.verb} the ${this.what} (restart ${this.restarts})`);
  }
}
