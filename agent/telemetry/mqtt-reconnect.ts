// mqtt.js retries a lost broker at a fixed period (`reconnectPeriod`, read when the connection
// drops and repeated for every failed try). Both MQTT links draw it afresh at each connect, for the
// outage that may follow, from [MIN, MIN + SPREAD): a fleet of charge points that lost the same broker
// at the same moment would otherwise knock on it in lockstep when it comes back.
const RECONNECT_MIN_MS = 1_000;
const RECONNECT_SPREAD_MS = 4_000;

/** A reconnect period in [1 s, 5 s), whole ms; random gives numbers in [0, 1). */
export function reconnectPeriodMs(random: () => number = Math.random): number {
  return RECONNECT_MIN_MS + Math.floor(random() * RECONNECT_SPREAD_MS);
}
