// The four conditions an origin can be in (origin/conditions.ts says what each means and
// moves between them). The names are printed on the failure line, in the metrics and on
// the error page, so they are a fact of their own here, below every layer that prints them.

export const CONDITIONS = ['up', 'drowning', 'down', 'recovering'] as const
export type Condition = typeof CONDITIONS[number]
