// Reads PostgreSQL's stored expression trees (pg_node_tree text, as in
// pg_policy.polqual) just enough to find function calls and what encloses
// them: `{FUNCEXPR :funcid 3294 …}` inside `{NULLIFEXPR …}` or `{SUBLINK …}`.

export interface FunctionCall {
  readonly funcid: number;
  /** Node types enclosing the call, innermost first. */
  readonly enclosing: readonly string[];
}

/**
 * Every FUNCEXPR in a node tree, with the node types that enclose it.
 *
 * @example
 * functionCalls('{NULLIFEXPR :args ({FUNCEXPR :funcid 3294 :args <>})}')
 * // [{ funcid: 3294, enclosing: ['NULLIFEXPR'] }]
 */
export function functionCalls(tree: string): FunctionCall[] {
  const calls: FunctionCall[] = [];
  const stack: string[] = [];
  let quoted = false;
  for (let i = 0; i < tree.length; i++) {
    const ch = tree[i]!;
    if (ch === '\\') {
      i++; // an escaped character is never structure
      continue;
    }
    if (ch === '"') {
      quoted = !quoted;
      continue;
    }
    if (quoted) continue;
    if (ch === '{') {
      const m = /^[A-Z_]+/.exec(tree.slice(i + 1, i + 40));
      const type = m ? m[0] : '';
      if (type === 'FUNCEXPR') {
        const id = /^:funcid (\d+)/.exec(tree.slice(i + 1 + type.length).trimStart());
        if (id) calls.push({ funcid: Number(id[1]), enclosing: [...stack].reverse() });
      }
      stack.push(type);
    } else if (ch === '}') {
      stack.pop();
    }
  }
  return calls;
}

/** The innermost enclosing node, looking through type relabelling. */
export function directParent(call: FunctionCall): string | undefined {
  return call.enclosing.find((t) => t !== 'RELABELTYPE');
}
