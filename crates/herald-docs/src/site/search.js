// Search over the generated index (search-index.js). No framework, no network:
// results are built with textContent, never innerHTML.
(function () {
  'use strict';
  var input = document.getElementById('search');
  var list = document.getElementById('search-results');
  if (!input || !list) return;
  var root = document.body.getAttribute('data-root') || '';
  var entries = window.HERALD_SEARCH || [];

  function rank(e, q) {
    var t = e.t.toLowerCase();
    var last = t.split('/').pop();
    if (last === q || t === q) return 0;
    if (t.indexOf(q) >= 0) return 1;
    return 2;
  }

  function render() {
    var q = input.value.trim().toLowerCase();
    while (list.firstChild) list.removeChild(list.firstChild);
    if (!q) return;
    var hits = entries.filter(function (e) {
      return e.t.toLowerCase().indexOf(q) >= 0 || e.d.toLowerCase().indexOf(q) >= 0;
    });
    hits.sort(function (a, b) { return rank(a, q) - rank(b, q); });
    if (!hits.length) {
      var none = document.createElement('li');
      none.textContent = 'No match.';
      list.appendChild(none);
      return;
    }
    hits.slice(0, 50).forEach(function (e) {
      var li = document.createElement('li');
      li.className = e.k;
      var a = document.createElement('a');
      a.href = root + e.u;
      a.textContent = e.t;
      var what = document.createElement('span');
      what.textContent = ' ' + e.k + ' · ' + e.d;
      li.appendChild(a);
      li.appendChild(what);
      list.appendChild(li);
    });
  }

  input.addEventListener('input', render);
})();
