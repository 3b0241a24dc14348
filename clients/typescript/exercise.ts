// Exercises the generated client (`client.ts`, written by `.ci/typescript.sh`) against a running
// showcase at $BASE_URL: each check goes through a typed method, so this file compiling is half
// the test and the answers matching is the other half.

import {
  ApiError,
  WaypostClient,
  type GetApiPostsQuery,
  type Page,
  type Post,
  type PostInput,
  type UserEnvelope,
} from "./client.js";

// The only Node API used; declared here so the build needs no @types/node.
declare const process: { env: Record<string, string | undefined>; exitCode?: number };

const baseUrl = process.env["BASE_URL"];
if (baseUrl === undefined || baseUrl === "") {
  throw new Error("set BASE_URL to the showcase's address, e.g. http://127.0.0.1:3000");
}

let passed = 0;
let failed = 0;

async function check(name: string, run: () => Promise<void>): Promise<void> {
  try {
    await run();
    passed += 1;
    console.log(`ok   ${name}`);
  } catch (error) {
    failed += 1;
    console.log(`FAIL ${name}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function expect(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

/** Runs `run`, which must throw an `ApiError`; returns it. */
async function apiError(run: () => Promise<unknown>): Promise<ApiError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw new Error(`expected an ApiError, got ${String(error)}`);
  }
  throw new Error("expected an ApiError, the call succeeded");
}

const client = new WaypostClient({ baseUrl });
// Unique per run, so the check also passes against a showcase that has run it before.
const run = Date.now().toString(36);
const email = `ts-client-${run}@example.com`;
const password = "typescript-client-1";

let postId = "";
let fileId = "";

await check("getApiHello answers Hello", async () => {
  const hello = await client.getApiHello();
  expect(isRecord(hello) && hello["message"] === "Hello", `got ${JSON.stringify(hello)}`);
});

await check("getApiStream reads the whole text stream", async () => {
  const text: string = await client.getApiStream();
  expect(text === "Hello World", `got ${JSON.stringify(text)}`);
});

await check("postApiAuthRegister creates the user", async () => {
  const created: UserEnvelope = await client.postApiAuthRegister({ email, password, name: "TS" });
  expect(created.user.email === email, `got ${created.user.email}`);
  expect(created.user.role === "user", `got role ${created.user.role}`);
});

await check("postApiAuthLogin gives a token that getApiAuthMe accepts", async () => {
  const login = await client.postApiAuthLogin({ email, password });
  expect(isRecord(login) && typeof login["token"] === "string", "no token in the login answer");
  client.setToken(login["token"]);
  const me = await client.getApiAuthMe();
  expect(me.user.email === email, `me is ${me.user.email}`);
});

await check("a signed-out create throws ApiError 401", async () => {
  const anonymous = new WaypostClient({ baseUrl });
  const error = await apiError(() => anonymous.postApiPosts({ title: "Nobody's", content: "x" }));
  expect(error.status === 401, `status ${error.status}`);
  expect(error.body !== undefined && error.requestId !== undefined, "no error body");
});

await check("postApiPosts creates a post from a typed PostInput", async () => {
  const input: PostInput = {
    title: `From TypeScript ${run}`,
    content: "Written by the generated client.",
    category: `ts-${run}`,
    published: true,
  };
  const post: Post = await client.postApiPosts(input);
  expect(post.title === input.title, `title ${post.title}`);
  expect(post.published, "not published");
  postId = post.id;
});

await check("an Idempotency-Key makes a retried create return the first post", async () => {
  const input: PostInput = { title: `Retried ${run}`, content: "Sent twice, stored once." };
  const key = { "Idempotency-Key": `create-${run}` };
  const first: Post = await client.postApiPosts(input, key);
  const retry: Post = await client.postApiPosts(input, key);
  expect(retry.id === first.id && retry.createdAt === first.createdAt, `ids ${first.id} ${retry.id}`);
  const other = await apiError(() => client.postApiPosts({ ...input, content: "Something else." }, key));
  expect(other.status === 422, `status ${other.status}`);
  await client.deleteApiPostsId({ id: first.id });
});

await check("getApiPostsId reads it back", async () => {
  const post = await client.getApiPostsId({ id: postId });
  expect(post.id === postId && post.title === `From TypeScript ${run}`, `got ${post.title}`);
});

await check("getApiPosts lists it with a typed query", async () => {
  const query: GetApiPostsQuery = { category: `ts-${run}`, limit: 5, page: 1, sort: "title" };
  const page: Page = await client.getApiPosts(query);
  expect(page.pagination.limit === 5, `limit ${page.pagination.limit}`);
  expect(page.pagination.total === 1, `total ${page.pagination.total}`);
  expect(page.posts[0]?.id === postId, "the post is not listed");
});

await check("patchApiPostsId changes one field", async () => {
  const post = await client.patchApiPostsId({ id: postId }, { title: `Renamed ${run}` });
  expect(post.title === `Renamed ${run}`, `title ${post.title}`);
  expect(post.content === "Written by the generated client.", "content changed");
});

await check("a bad body throws ApiError validation_failed with details", async () => {
  const error = await apiError(() => client.postApiPosts({ title: "x", content: "" }));
  expect(error.status === 400, `status ${error.status}`);
  expect(error.code === "validation_failed", `code ${String(error.code)}`);
  expect(error.body?.details !== undefined, "no details");
});

await check("postApiUpload sends FormData; getApiFilesFileId returns a Blob", async () => {
  const form = new FormData();
  form.append("file", new Blob(["typed bytes"], { type: "text/plain" }), "note.txt");
  const uploaded = await client.postApiUpload(form);
  expect(isRecord(uploaded) && typeof uploaded["fileId"] === "string", "no fileId");
  fileId = uploaded["fileId"];
  const blob: Blob = await client.getApiFilesFileId({ fileId });
  expect((await blob.text()) === "typed bytes", "different bytes came back");
});

await check("deleteApiPostsId resolves to nothing", async () => {
  const result: void = await client.deleteApiPostsId({ id: postId });
  expect(result === undefined, "the delete returned something");
});

await check("a missing post throws ApiError not_found", async () => {
  const error = await apiError(() => client.getApiPostsId({ id: postId }));
  expect(error.status === 404, `status ${error.status}`);
  expect(error.code === "not_found", `code ${String(error.code)}`);
  expect(error instanceof Error && error.name === "ApiError", "not an Error named ApiError");
});

await check("path parameters are URL-encoded and reach the server as one segment", async () => {
  const error = await apiError(() => client.getApiPostsId({ id: "no/such?post#" }));
  expect(error.status === 404 && error.code === "not_found", `status ${error.status}`);
});

await check("the fetch option sees encoded paths, queries and the auth headers", async () => {
  const seen: { url: string; method: string; headers: Record<string, string> }[] = [];
  const recording = new WaypostClient({
    baseUrl: "http://api.invalid/",
    token: "t0k",
    csrfToken: "c5rf",
    fetch: async (input, init) => {
      seen.push({
        url: String(input),
        method: init?.method ?? "GET",
        headers: { ...(init?.headers as Record<string, string>) },
      });
      return init?.method === "DELETE"
        ? new Response(null, { status: 204 })
        : new Response(JSON.stringify({ posts: [], pagination: {} }), {
            headers: { "Content-Type": "application/json" },
          });
    },
  });
  await recording.getApiPosts({ category: "a b&c", limit: 2 });
  await recording.deleteApiPostsId({ id: "x/y" });
  const [list, remove] = seen;
  expect(list?.url === "http://api.invalid/api/posts?category=a+b%26c&limit=2", `url ${list?.url}`);
  expect(list.headers["Authorization"] === "Bearer t0k", "no bearer token");
  expect(list.headers["X-CSRF-Token"] === undefined, "CSRF token sent on GET");
  expect(remove?.url === "http://api.invalid/api/posts/x%2Fy", `url ${remove?.url}`);
  expect(remove.method === "DELETE" && remove.headers["X-CSRF-Token"] === "c5rf", "no CSRF token");
});

console.log(`typescript client: ${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
