// The index's filters: status checkboxes, initiative, free text. The page works without this script.
"use strict";
(function () {
  const form = document.getElementById("filters");
  const table = document.getElementById("items");
  if (!form || !table) return;
  const rows = Array.from(table.tBodies[0].rows);
  const texts = rows.map((row) => row.textContent.toLowerCase());
  const shown = document.getElementById("shown");
  function apply() {
    const statuses = new Set(Array.from(form.querySelectorAll("input[name=status]:checked"), (box) => box.value));
    const initiative = form.elements.initiative.value;
    const words = form.elements.q.value.toLowerCase().split(/\s+/).filter(Boolean);
    let count = 0;
    rows.forEach((row, i) => {
      const visible = statuses.has(row.dataset.status)
        && (!initiative || row.dataset.initiative === initiative)
        && words.every((word) => texts[i].includes(word));
      row.hidden = !visible;
      if (visible) count += 1;
    });
    shown.textContent = count + " shown";
  }
  form.addEventListener("input", apply);
  form.addEventListener("submit", (event) => event.preventDefault());
  apply();
})();
