"""Routing: who takes which handover, and what happens as time passes (`router`,
`timers`). The rules themselves live in the domain (`domain.agents`,
`domain.assignment`, `domain.notices`); this package runs them."""
