"""Real-browser end-to-end tests: headless Debian Chromium driven by Playwright."""
