"""Report output: Allure environment and categories, case tables and matrices, HTML."""
