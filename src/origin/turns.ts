// Work a burst of timers would otherwise do in one go. When a thousand connect timers
// expire in the same millisecond (a 522 storm), Node runs all their callbacks, and the
// failure each one starts (classify, log, answer, close), before it polls for I/O again:
// every healthy request waits for the whole burst. Here the callbacks only queue their
// failure, and the queue is drained a few at a time per turn of the event loop, with I/O
// in between. Each 522 still knows its moment exactly (the timer is precise); it is only
// written out a turn or two later.

const PER_TURN = 8

const queue: Array<() => void> = []
let scheduled = false

export function inTurn (work: () => void): void {
  queue.push(work)
  if (!scheduled) {
    scheduled = true
    setImmediate(drain)
  }
}

function drain (): void {
  for (let i = 0; i < PER_TURN && queue.length > 0; i++) (queue.shift() as () => void)()
  if (queue.length > 0) setImmediate(drain)
  else scheduled = false
}
