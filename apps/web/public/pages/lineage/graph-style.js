// @ts-check
/**
 * How the lineage graph looks: datasets grey, stages and checkpoints in their run's color
 * (data(color)), the page's own run outlined, parent edges bold, trained-on edges dashed.
 *
 * @type {import('/vendor/cytoscape.esm.min.js').StylesheetJson}
 */
export const GRAPH_STYLE = [
  {
    selector: 'node',
    style: {
      label: 'data(label)',
      'font-size': 10,
      'text-wrap': 'wrap',
      'text-max-width': '140px',
      'text-valign': 'bottom',
      'text-margin-y': 4,
      color: '#0f172a',
      'background-color': 'data(color)',
      'border-width': 0,
    },
  },
  {
    selector: 'node.dataset',
    style: { shape: 'round-rectangle', width: 26, height: 18, 'background-color': '#94a3b8' },
  },
  { selector: 'node.stage', style: { shape: 'round-rectangle', width: 34, height: 22 } },
  {
    selector: 'node.checkpoint',
    style: { shape: 'ellipse', width: 12, height: 12, 'font-size': 8, 'background-opacity': 0.75 },
  },
  { selector: 'node[own = 1]', style: { 'border-width': 2, 'border-color': '#0f172a' } },
  {
    selector: 'edge',
    style: {
      width: 1.5,
      'curve-style': 'bezier',
      'target-arrow-shape': 'triangle',
      'arrow-scale': 0.8,
      'line-color': '#cbd5e1',
      'target-arrow-color': '#cbd5e1',
    },
  },
  { selector: 'edge.parent', style: { width: 2.5, 'line-color': '#0f172a', 'target-arrow-color': '#0f172a' } },
  {
    selector: 'edge.trained-on',
    style: { 'line-style': 'dashed', 'line-color': '#94a3b8', 'target-arrow-color': '#94a3b8' },
  },
];
