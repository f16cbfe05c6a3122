"""Reference implementation the generated S2 tests run against."""


def calculate_discount(price: float, percent: float) -> float:
    """Price after a percentage discount, rounded to cents.

    Args:
        price: Original price; must not be negative.
        percent: Discount in percent, from 0 to 100 inclusive.

    Returns:
        The discounted price, rounded to 2 decimals.

    Raises:
        ValueError: If price is negative or percent is outside 0..100.
    """
    if price < 0:
        raise ValueError("price must not be negative")
    if not 0 <= percent <= 100:
        raise ValueError("percent must be between 0 and 100")
    return round(price * (1 - percent / 100), 2)
