"""An Apna pusher: sends candidate leads the way Apna's integration guide describes.

POST, JSON, Basic or token auth; "if the initial request does not receive a response or returns
an error, Apna will automatically retry once after 5 seconds". ``retry_delay`` is that 5 s
(shorter in tests). Every person is fictional; the seed fixes them.
"""

from __future__ import annotations

import asyncio
import base64
import random
from dataclasses import dataclass, field
from typing import Any

import httpx

FIRST = ["Aarav", "Diya", "Kabir", "Anaya", "Vihaan", "Ishita", "Reyansh", "Meera"]
LAST = ["Sharma", "Verma", "Iyer", "Nair", "Gupta", "Reddy", "Khan", "Das"]
CITIES = [("New Delhi", "DL", 28.61, 77.21), ("Mumbai", "MH", 19.08, 72.88),
          ("Bengaluru", "KA", 12.97, 77.59), ("Pune", "MH", 18.52, 73.86)]  # fmt: skip


def make_leads(count: int, *, seed: int = 11) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    leads = []
    for index in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        city, state, lat, lng = rng.choice(CITIES)
        leads.append(
            {
                "full_name": f"{first} {last}",
                "gender": rng.choice(["m", "f"]),
                "date_of_birth": f"{rng.randrange(1975, 2004)}-0{rng.randrange(1, 9)}-14T18:30:00Z",
                "current_salary": 1000 * rng.randrange(15, 90),
                "current_salary_v2": 12000 * rng.randrange(15, 90),
                "notice_period": rng.choice([0, 15, 30, 60, 90]),
                "english_language_marker": rng.choice(["basic", "intermediate", "advanced"]),
                "user_location": {
                    "display_name": f"{city}, {state}",
                    "city": city,
                    "derived_location": {"lat": lat, "lng": lng},
                },
                "educations": [
                    {
                        "education_level": "Graduate",
                        "degree": "B.Com",
                        "education_institute": "Example University",
                        "specialization": "Accounts",
                        "start": "2014-07-31T18:30:00Z",
                        "end": "2017-04-30T18:30:00Z",
                        "ongoing": False,
                    }
                ],
                "experiences": [
                    {
                        "organization": "Example Retail",
                        "job_title": "Store Associate",
                        "employment_type": "full-time",
                        "industry": "Retail",
                        "department": "Sales",
                        "start": "2019-06-30T18:30:00Z",
                        "ongoing": True,
                    }
                ],
                "known_languages": ["Hindi", "English"],
                "skills": ["Billing", "Customer service"],
                "contact_info": {
                    "email": f"{first.lower()}.{last.lower()}{index}@example.org",
                    "phone_number": f"9{rng.randrange(10**8, 10**9)}",
                },
                "job": {"id": f"JOB-{100 + index % 7}", "title": "Store Associate"},  # undocumented
            }
        )
    return leads


@dataclass
class PushResult:
    statuses: list[int | None] = field(default_factory=list)  # None: no answer

    @property
    def delivered(self) -> bool:
        return bool(self.statuses) and self.statuses[-1] == 200


@dataclass
class ApnaPusher:
    url: str
    auth: tuple[str, str] | None = None  # Basic
    token: str | None = None  # or "Authorization: Bearer <token>"
    retry_delay: float = 5.0
    timeout: float = 10.0

    async def push(self, client: httpx.AsyncClient, lead: Any) -> PushResult:
        """One lead, with Apna's single retry after ``retry_delay`` on no answer or an error."""
        result = PushResult()
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if self.auth is not None:
            pair = f"{self.auth[0]}:{self.auth[1]}".encode()
            headers = {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        for attempt in (1, 2):
            try:
                reply = await client.post(
                    self.url, json=lead, headers=headers, timeout=self.timeout
                )
                result.statuses.append(reply.status_code)
                if reply.status_code == 200:
                    return result
            except httpx.HTTPError:
                result.statuses.append(None)
            if attempt == 1:
                await asyncio.sleep(self.retry_delay)
        return result
