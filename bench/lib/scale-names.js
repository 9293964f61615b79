/** @module bench/lib/scale-names — the names of the scale scenario, shared by the seeding and the server. */

/** `s000001.scale.bench.test`…: equal lengths, so a template's name bytes can be swapped in place. */
export function scaleNames(count) {
  return Array.from({ length: count }, (_, i) => `s${String(i + 1).padStart(6, '0')}.scale.bench.test`);
}
