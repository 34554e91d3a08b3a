// The public HTTP API, called with the user's own bearer token (kept in sessionStorage).

const TOKEN_KEY = "medloop.token";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

function authHeaders(extra = {}) {
  const token = getToken();
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

async function errorOf(response) {
  let code = "error";
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body?.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch {
    // not JSON: keep the status line
  }
  if (response.status === 401) window.dispatchEvent(new CustomEvent("medloop:unauthorized"));
  return new ApiError(response.status, code, message);
}

/**
 * Call the API. Options: method, json (a body sent as JSON), body (FormData / Blob),
 * raw (return the Response), signal.
 */
export async function api(path, { method = "GET", json, body, raw = false, signal } = {}) {
  const headers = authHeaders(json !== undefined ? { "Content-Type": "application/json" } : {});
  const response = await fetch(path, {
    method,
    headers,
    body: json !== undefined ? JSON.stringify(json) : body,
    signal,
    cache: "no-store",
  });
  if (!response.ok) throw await errorOf(response);
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

/** Fetch a binary resource (an overlay, a mask, an image) as a Blob. */
export async function apiBlob(path, signal) {
  const response = await api(path, { raw: true, signal });
  return response.blob();
}

/** Blob URLs made for one view, revoked together when the view goes away. */
export class UrlBag {
  constructor() {
    this.urls = new Set();
  }
  async fetch(path, signal) {
    const url = URL.createObjectURL(await apiBlob(path, signal));
    this.urls.add(url);
    return url;
  }
  revoke() {
    for (const url of this.urls) URL.revokeObjectURL(url);
    this.urls.clear();
  }
}

/**
 * POST a FormData with XMLHttpRequest, to report upload progress.
 * onProgress(fraction) is called while the body is sent; resolves with the JSON answer.
 */
export function uploadWithProgress(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    const token = getToken();
    if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.upload.addEventListener("load", () => onProgress(1));
    xhr.addEventListener("load", () => {
      const body = xhr.response;
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(body);
        return;
      }
      if (xhr.status === 401) window.dispatchEvent(new CustomEvent("medloop:unauthorized"));
      const err = body?.error || {};
      reject(new ApiError(xhr.status, err.code || "error", err.message || `upload failed (${xhr.status})`));
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "network", "network error during upload")));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "aborted", "upload cancelled")));
    xhr.send(form);
  });
}

/** Paths under the current project. */
export function projectPath(project, rest = "") {
  return `/api/v1/projects/${encodeURIComponent(project.id)}${rest}`;
}

export const enc = encodeURIComponent;
