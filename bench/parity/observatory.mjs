// Runs the installed MDN HTTP Observatory on each parity case and prints one JSON line per case.
// Usage: node observatory.mjs PACKAGE_DIR HTTPS_PORT HTTP_PORT CLOSED_PORT CASES_JSON
// The scanner's own scan() ignores ports and paths, so this calls its retriever with them and then
// scores exactly as scan() does, with the scanner's tests, score table and grade chart.
const [pkg, httpsPort, httpPort, closedPort, casesFile] = process.argv.slice(2);
const { readFileSync } = await import("node:fs");
const { retrieve } = await import(`${pkg}/src/retriever/retriever.js`);
const { ALL_TESTS } = await import(`${pkg}/src/constants.js`);
const { getGradeForScore, getScoreModifier } = await import(`${pkg}/src/grader/grader.js`);
const { MINIMUM_SCORE_FOR_EXTRA_CREDIT } = await import(`${pkg}/src/grader/charts.js`);

for (const c of JSON.parse(readFileSync(casesFile, "utf8"))) {
  try {
    const r = await retrieve("localhost", {
      httpsPort,
      httpPort: c.http === "closed" ? closedPort : httpPort,
      path: `/case/${c.name}`,
    });
    if (!r.responses.auto) throw new Error("the site seems to be down");
    const status = r.responses.auto.status;
    if (status < 200 || (status >= 400 && ![401, 403].includes(status))) throw new Error(`status ${status}`);
    let withExtra = 100, uncurved = 100;
    const tests = {};
    for (const test of ALL_TESTS) {
      const out = test(r);
      const m = out.result ? getScoreModifier(out.result) : 0;
      withExtra += m;
      if (m < 0) uncurved += m;
      tests[out.constructor.name] = out.result;
    }
    const final = getGradeForScore(uncurved >= MINIMUM_SCORE_FOR_EXTRA_CREDIT ? withExtra : uncurved);
    console.log(JSON.stringify({ name: c.name, score: final.score, grade: final.grade, tests }));
  } catch (e) {
    console.log(JSON.stringify({ name: c.name, error: String(e && e.message || e) }));
  }
}
process.exit(0);
