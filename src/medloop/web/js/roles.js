// The users' roles, lowest first: each role may do all that the roles below it may.
// The same order as the server's (api/security.py); the server enforces it, the page
// only hides what a role cannot use.

export const ROLE_RANK = Object.freeze({ viewer: 0, annotator: 1, admin: 2 });

/** Whether `role` has at least the rights of `needed`; an unknown role has none. */
export function roleAtLeast(role, needed) {
  return (ROLE_RANK[role] ?? -1) >= ROLE_RANK[needed];
}
