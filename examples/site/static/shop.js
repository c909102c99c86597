// Demo shop script: nothing personalization depends on.
document.documentElement.classList.add("js");
