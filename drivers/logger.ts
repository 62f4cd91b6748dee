// The little logging drivers need: one event name and fields per line. The agent's Logger has these
// methods, so it is passed in as it is; drivers never import the agent's logging.

export type DriverLogFields = Record<string, unknown>;

export interface DriverLogger {
  err(event: string, fields?: DriverLogFields): void;
  info(event: string, fields?: DriverLogFields): void;
}
