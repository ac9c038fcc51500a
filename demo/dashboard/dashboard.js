// The demo dashboard: polls /_demo/stats, fetches the demo pages to show their cache headers, and
// drives the stampede, pause/resume and invalidate endpoints. Plain browser JS, no build step.
const $ = (selector) => document.querySelector(selector)

function showError(message) {
  $('#error').textContent = message
}

async function post(path, body) {
  const res = await fetch(path, {
    method: 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const json = await res.json()
  if (!res.ok) throw new Error(json.error ?? `${path}: HTTP ${res.status}`)
  return json
}

const list = (record) =>
  Object.keys(record).length === 0
    ? 'none'
    : Object.entries(record)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ')

function renderStats(data) {
  const { stats } = data
  for (const cell of document.querySelectorAll('[data-stat]')) {
    const value = cell.dataset.stat.split('.').reduce((o, k) => o?.[k], stats)
    cell.textContent = value !== null && typeof value === 'object' ? list(value) : String(value)
  }
  $('#store').textContent = data.store
  const mc = data.memcached
  $('#memcached-status').textContent =
    mc === null
      ? 'not started by the demo, so not paused from here'
      : `${mc.paused ? 'paused' : 'running'} (${mc.address}, pid ${mc.pid}, started by the demo)`
  $('#pause').disabled = mc === null || mc.paused
  $('#resume').disabled = mc === null || !mc.paused
  const select = $('#tag')
  if (select.options.length === 0) {
    for (const tag of data.tags) select.add(new Option(tag, tag))
  }
}

async function poll() {
  try {
    const res = await fetch('/_demo/stats', { cache: 'no-store' })
    renderStats(await res.json())
    showError('')
  } catch (err) {
    showError(`stats: ${err.message} (is the demo server running?)`)
  }
}

function cell(row, name, text, className = '') {
  let td = row.querySelector(`.${name}`)
  if (td === null) {
    td = document.createElement('td')
    td.className = name
    row.insertBefore(td, row.querySelector('td.action'))
  }
  td.textContent = text
  if (className) td.classList.add(className)
}

async function fetchPage(row) {
  const path = row.dataset.path
  const started = performance.now()
  try {
    // no-store: the browser's own cache stays out of it (it adds `Cache-Control: no-cache`, which
    // the server ignores unless honorClientNoCache is set).
    const res = await fetch(path, { cache: 'no-store' })
    await res.arrayBuffer()
    const ms = Math.round(performance.now() - started)
    const xCache = res.headers.get('x-cache') ?? '—'
    row.querySelector('.x-cache')?.classList.remove('HIT', 'STALE', 'MISS', 'BYPASS')
    cell(row, 'x-cache', xCache, xCache)
    cell(row, 'age', res.headers.get('age') ?? '—')
    cell(row, 'status', String(res.status))
    cell(row, 'time', `${ms} ms`)
  } catch (err) {
    cell(row, 'x-cache', `error: ${err.message}`)
  }
}

const rows = () => [...document.querySelectorAll('#pages tbody tr')]
const fetchAll = () => Promise.all(rows().map(fetchPage))

for (const row of rows()) {
  const td = document.createElement('td')
  td.className = 'action'
  const button = document.createElement('button')
  button.type = 'button'
  button.textContent = 'Fetch'
  button.addEventListener('click', () => fetchPage(row))
  td.append(button)
  row.append(td)
  for (const name of ['x-cache', 'age', 'status', 'time']) cell(row, name, '')
}
$('#fetch-all').addEventListener('click', fetchAll)

$('#stampede').addEventListener('click', async () => {
  const button = $('#stampede')
  button.disabled = true
  $('#stampede-result').textContent = ''
  $('#stampede-outcomes').textContent = ''
  $('#stampede-status').textContent = 'waiting for /stampede to expire, then firing 50 requests…'
  try {
    const result = await post('/_demo/stampede')
    $('#stampede-result').textContent = `origin renders: ${result.renders}`
    $('#stampede-outcomes').textContent =
      `${result.requests} requests: ${list(result.outcomes)} (HTTP ${list(result.statuses)})`
    $('#stampede-status').textContent = ''
  } catch (err) {
    $('#stampede-status').textContent = `failed: ${err.message}`
  } finally {
    button.disabled = false
    poll()
  }
})

for (const action of ['pause', 'resume']) {
  $(`#${action}`).addEventListener('click', async () => {
    try {
      await post(`/_demo/memcached/${action}`)
    } catch (err) {
      showError(`${action}: ${err.message}`)
    }
    poll()
  })
}

$('#invalidate').addEventListener('click', async () => {
  const tag = $('#tag').value
  try {
    await post('/_demo/invalidate', { tags: [tag] })
    $('#invalidate-result').textContent = `invalidated tag "${tag}"`
    await fetchAll()
  } catch (err) {
    $('#invalidate-result').textContent = `failed: ${err.message}`
  }
  poll()
})

poll()
setInterval(poll, 1000)
fetchAll()
