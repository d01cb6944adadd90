// @ts-check
/**
 * The models the playground offers: the aliases (GET /v1/aliases) and checkpoints
 * (GET /v1/checkpoints) as the choices of the model select, "alias:<name>" or "checkpoint:<id>".
 *
 * @typedef {import('../../lib/api.js').CheckpointView} CheckpointView
 * @typedef {import('../../lib/api.js').AliasView} AliasView
 */
import { api } from '../../lib/api.js';
import { h, replace } from '../../lib/dom.js';

export function modelCatalog() {
  /** @type {Map<string, CheckpointView>} */
  const checkpoints = new Map();
  /** @type {Map<string, string>} */
  const aliasTarget = new Map();

  /** @param {string} cid */
  const describe = (cid) => {
    const c = checkpoints.get(cid);
    return c ? `${c.run.name} / ${c.stage.name} @ ${c.step} (${c.stage.kind})` : `checkpoint ${cid.slice(0, 8)}`;
  };

  /**
   * Fills the select; the query's ?checkpoint= or ?alias= is selected where it is offered.
   * @param {HTMLSelectElement} model
   * @param {URLSearchParams} query
   */
  const load = async (model, query) => {
    const [{ aliases }, list] = /** @type {[{ aliases: AliasView[] }, { checkpoints: CheckpointView[] }]} */ (
      await Promise.all([api('/v1/aliases?limit=500'), api('/v1/checkpoints?limit=500')])
    );
    for (const c of list.checkpoints) checkpoints.set(c.id, c);
    for (const a of aliases) aliasTarget.set(a.name, a.checkpointId);
    replace(
      model,
      !aliases.length && !list.checkpoints.length
        ? h('option', { value: '' }, 'No checkpoints yet: train a run first')
        : null,
      aliases.length
        ? h(
            'optgroup',
            { label: 'Aliases' },
            aliases.map((a) => h('option', { value: `alias:${a.name}` }, `${a.name} → ${describe(a.checkpointId)}`)),
          )
        : null,
      list.checkpoints.length
        ? h(
            'optgroup',
            { label: 'Checkpoints (newest first)' },
            list.checkpoints.map((c) => h('option', { value: `checkpoint:${c.id}` }, describe(c.id))),
          )
        : null,
    );
    const wanted = query.get('checkpoint')
      ? `checkpoint:${query.get('checkpoint')}`
      : query.get('alias')
        ? `alias:${query.get('alias')}`
        : '';
    if (wanted && [...model.options].some((o) => o.value === wanted)) model.value = wanted;
  };

  /** The kind of a choice's stage, for the prompt's placeholder. @param {string} value */
  const kindOf = (value) => {
    const [type, ref] = splitChoice(value);
    const cid = type === 'alias' ? aliasTarget.get(ref) : ref;
    return cid ? checkpoints.get(cid)?.stage.kind : undefined;
  };

  return { checkpoints, load, kindOf };
}

/**
 * "alias:GuoJing" → ["alias", "GuoJing"]; "checkpoint:<id>" → ["checkpoint", id].
 * @param {string} value
 * @returns {[string, string]}
 */
export function splitChoice(value) {
  const at = value.indexOf(':');
  return at < 0 ? ['', ''] : [value.slice(0, at), value.slice(at + 1)];
}
