/**
 * The restart and give-up rule shared by the doors that run an implementation in a process or
 * thread of its own (the --exec child, the isolation worker): after a fault the process is
 * replaced by a fresh one for the next call, at most `maxRestarts` times; after that every call
 * fails at once with the door's give-up fault, naming the faults seen. One rule, one default.
 */

/** Restarts allowed before a door gives up. A hostile implementation faults on every call; five fresh starts show it is not a one-off. */
export const DEFAULT_MAX_RESTARTS = 5;

export class RestartBudget {
  restarts = 0;
  /** One line per fault and restart, `<fault>: <message>` or `restarted the <what> (restart n)`, for the report's footer. */
  readonly events: string[] = [];

  constructor(
    private readonly what: 'child' | 'worker',
    private readonly maxRestarts: number,
    private readonly giveUp: (message: string) => Error,
  ) {}

  /** Record a fault (its message starts with the fault's name). */
  note(event: string): void {
    if (event) this.events.push(event);
  }

  /** A fresh process is about to start after a fault: count it, or throw the give-up fault. */
  restart(): void {
    if (this.restarts >= this.maxRestarts) {
      const faults = this.events.filter((e) => !e.startsWith('restarted '));
      const names = [...new Set(faults.map((e) => e.split(':')[0] ?? ''))].join(', ');
      throw this.giveUp(`the ${this.what} was restarted ${this.restarts} times; no more restarts (faults seen: ${names}; last: ${faults.at(-1) ?? ''})`);
    }
    this.restarts++;
    this.events.push(`restarted the ${this.what} (restart ${this.restarts})`);
  }
}
